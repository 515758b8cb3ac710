//! The pool benchmark (run by `scripts/bench-pool.sh`, release build). Each phase runs in its
//! own child process so peak RSS is measured per phase. Prints every figure of the issue's
//! "Measure" list; sizes can be scaled down with BENCH_INGEST_MIB and BENCH_SMALL_FILES.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hoard_pool::{BackupType, CommitInfo, Entry, EntryKind, Pool, PoolOptions, SnapshotWriter};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

/// Mixed data: a third random, a third text-like, a third sparse/repetitive, in 64 KiB runs.
fn mixed_data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let words = [
        "backup", "pool", "hoard", "the", "of", "file", "0x1f", "error", "user", "/usr/lib", "\n",
        "    ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let run = 64 * 1024;
        match rng.u8(0..3) {
            0 => out.extend((0..run).map(|_| rng.u8(..))),
            1 => {
                let target = out.len() + run;
                while out.len() < target {
                    out.extend_from_slice(words[rng.usize(..words.len())].as_bytes());
                    out.push(b' ');
                    if rng.u8(0..8) == 0 {
                        out.extend_from_slice(rng.u32(..).to_string().as_bytes());
                    }
                }
            }
            _ => {
                let mut block = vec![0u8; run];
                for _ in 0..64 {
                    let at = rng.usize(..run - 8);
                    block[at..at + 8].copy_from_slice(&rng.u64(..).to_le_bytes());
                }
                out.extend_from_slice(&block);
            }
        }
    }
    out.truncate(len);
    out
}

fn put(w: &mut SnapshotWriter, path: &[u8], data: &[u8]) {
    let mut e = Entry::new(path.to_vec(), EntryKind::File);
    e.size = data.len() as u64;
    let mut f = w.begin_file(e).expect("begin_file");
    f.write_all(data).expect("write");
    f.finish().expect("finish");
}

fn phase_ingest(work: &Path) {
    let mib = env_u64("BENCH_INGEST_MIB", 1024) as usize;
    let data = mixed_data(mib << 20, 1);
    // The single-core limit: BLAKE3 + zstd level 3 over the same data, in 1 MiB pieces,
    // measured before and after the ingest (the machine is shared; the mean is the reference).
    let measure_limit = || {
        let t = Instant::now();
        let mut compressed = 0usize;
        let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd");
        for piece in data.chunks(1 << 20) {
            std::hint::black_box(blake3::hash(piece));
            compressed += compressor.compress(piece).expect("zstd").len();
        }
        (
            data.len() as f64 / t.elapsed().as_secs_f64() / 1e6,
            compressed,
        )
    };
    let (limit_before, compressed) = measure_limit();
    let _ = std::fs::remove_dir_all(work.join("ingest"));
    let pool = Pool::create(work.join("ingest"), PoolOptions::default()).expect("pool");
    let t = Instant::now();
    let mut w = pool
        .begin_snapshot("bench", BackupType::Full, None)
        .expect("begin");
    // Files of 64 KiB .. 64 MiB (sizes cycle), written in 1 MiB pieces as a transport would.
    let sizes = [64 << 10, 300 << 10, 1 << 20, 5 << 20, 17 << 20, 64 << 20];
    let (mut off, mut i) = (0usize, 0usize);
    while off < data.len() {
        let len = sizes[i % sizes.len()].min(data.len() - off);
        let mut e = Entry::new(format!("d{}/f{i}", i % 16).into_bytes(), EntryKind::File);
        e.size = len as u64;
        let mut f = w.begin_file(e).expect("begin_file");
        for piece in data[off..off + len].chunks(1 << 20) {
            f.write_all(piece).expect("write");
        }
        f.finish().expect("finish");
        off += len;
        i += 1;
    }
    let info = w.commit(CommitInfo::default()).expect("commit");
    let secs = t.elapsed().as_secs_f64();
    let rate = data.len() as f64 / secs / 1e6;
    let (limit_after, _) = measure_limit();
    let limit = (limit_before + limit_after) / 2.0;
    println!(
        "limit: BLAKE3 + zstd-3 single core over {mib} MiB mixed data: {limit_before:.0} MB/s before, {limit_after:.0} MB/s after the ingest (compresses to {:.1}%)",
        100.0 * compressed as f64 / data.len() as f64
    );
    println!(
        "ingest: {mib} MiB mixed data in {i} files: {secs:.2} s = {rate:.0} MB/s on one core = {:.0}% of the limit; stored {:.1}% of input; peak RSS {:.0} MiB",
        100.0 * rate / limit,
        100.0 * dir_bytes(&work.join("ingest/packs")) as f64 / info.bytes as f64,
        peak_rss_mib()
    );
}

/// Content of small file `i` at `version`: 1..16 KiB slice of shared mixed data, made unique.
fn small_file(base: &[u8], i: u64, version: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(i * 31 + version);
    let len = rng.usize(1024..=16 * 1024);
    let at = rng.usize(..base.len() - len);
    let mut data = base[at..at + len].to_vec();
    data[..16].copy_from_slice(&[i.to_le_bytes(), version.to_le_bytes()].concat());
    data
}

fn small_path(i: u64) -> Vec<u8> {
    format!("dir{:04}/file{:06}", i / 1000, i).into_bytes()
}

fn phase_small_files(work: &Path) {
    let n = env_u64("BENCH_SMALL_FILES", 1_000_000);
    let base = mixed_data(64 << 20, 2);
    let pool = Pool::create(work.join("small"), PoolOptions::default()).expect("pool");
    let t = Instant::now();
    let mut w = pool
        .begin_snapshot("many", BackupType::Full, None)
        .expect("begin");
    let mut bytes = 0u64;
    for i in 0..n {
        let data = small_file(&base, i, 0);
        bytes += data.len() as u64;
        put(&mut w, &small_path(i), &data);
    }
    let info = w.commit(CommitInfo::default()).expect("commit");
    let secs = t.elapsed().as_secs_f64();
    let pack_files = std::fs::read_dir(work.join("small/packs"))
        .map(|r| {
            r.flatten()
                .map(|d| std::fs::read_dir(d.path()).map(|x| x.count()).unwrap_or(0))
                .sum::<usize>()
        })
        .unwrap_or(0);
    println!(
        "small files: {n} files of 1-16 KiB ({:.0} MB) in {secs:.1} s = {:.0} files/s ({:.0} MB/s); {pack_files} pack files; pool {:.0} MB; peak RSS {:.0} MiB",
        bytes as f64 / 1e6,
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        dir_bytes(&work.join("small")) as f64 / 1e6,
        peak_rss_mib()
    );
    assert_eq!(info.file_count, n);
}

fn phase_incremental(work: &Path, clustered: bool) {
    let n = env_u64("BENCH_SMALL_FILES", 1_000_000);
    let base = mixed_data(64 << 20, 2);
    let pool = Pool::open(work.join("small")).expect("pool from the small-files phase");
    let first = pool.latest("many").expect("list").expect("first snapshot");
    let before = dir_bytes(&work.join("small"));
    // 1% of files change: spread at random over all directories, or clustered in 1% of them.
    let changed: std::collections::BTreeSet<u64> = if clustered {
        let dirs = (n / 1000).max(1);
        let mut rng = fastrand::Rng::with_seed(5);
        let mut set = std::collections::BTreeSet::new();
        while (set.len() as u64) < n / 100 {
            let d = rng.u64(..dirs);
            for i in d * 1000..((d + 1) * 1000).min(n) {
                set.insert(i);
            }
        }
        set
    } else {
        let mut rng = fastrand::Rng::with_seed(4);
        (0..n / 100).map(|_| rng.u64(..n)).collect()
    };
    let version = if clustered { 2 } else { 1 };
    let t = Instant::now();
    let mut w = pool
        .begin_snapshot("many", BackupType::Incremental, Some(&first.id))
        .expect("begin");
    let mut changed_bytes = 0;
    if clustered {
        // The transport knows which directories changed: keep the others whole.
        let dirs: std::collections::BTreeSet<u64> = changed.iter().map(|i| i / 1000).collect();
        for d in 0..(n / 1000).max(1) {
            let name = format!("dir{d:04}");
            if !dirs.contains(&d) {
                w.keep_tree(name.as_bytes()).expect("keep_tree");
            }
        }
        for &i in &changed {
            let data = small_file(&base, i, version);
            changed_bytes += data.len() as u64;
            put(&mut w, &small_path(i), &data);
        }
    } else {
        // A file-by-file comparison: every unchanged file is kept by path.
        for i in 0..n {
            if changed.contains(&i) {
                let data = small_file(&base, i, version);
                changed_bytes += data.len() as u64;
                put(&mut w, &small_path(i), &data);
            } else {
                let mut e = Entry::new(small_path(i), EntryKind::File);
                e.size = 0;
                w.keep(e).expect("keep");
            }
        }
    }
    let info = w.commit(CommitInfo::default()).expect("commit");
    let secs = t.elapsed().as_secs_f64();
    let grown = dir_bytes(&work.join("small")) - before;
    println!(
        "incremental ({}): {} of {n} files changed ({:.1} MB): {secs:.1} s; pool grew {:.1} MB = {:.2}x the changed bytes (new packs {:.1} MB of which file data {:.1} MB plain); peak RSS {:.0} MiB",
        if clustered {
            "changes clustered in 1% of directories, keep_tree for the rest"
        } else {
            "changes spread over all directories, keep() per unchanged file"
        },
        changed.len(),
        changed_bytes as f64 / 1e6,
        grown as f64 / 1e6,
        grown as f64 / changed_bytes as f64,
        info.new_stored_bytes as f64 / 1e6,
        info.new_bytes as f64 / 1e6,
        peak_rss_mib()
    );
}

fn phase_list(work: &Path) {
    let path = work.join("list");
    {
        let pool = Pool::create(&path, PoolOptions::default()).expect("pool");
        let mut w = pool
            .begin_snapshot("wide", BackupType::Full, None)
            .expect("begin");
        for i in 0..100_000u64 {
            put(
                &mut w,
                format!("wide/entry-{i:08}.dat").as_bytes(),
                &i.to_le_bytes(),
            );
        }
        w.commit(CommitInfo::default()).expect("commit");
    }
    let pool = Pool::open(&path).expect("reopen");
    let id = pool.latest("wide").expect("list").expect("snapshot").id;
    let reader = pool.snapshot(&id).expect("snapshot");
    let t = Instant::now();
    let entries = reader.list_dir(b"wide").expect("list_dir");
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let again = reader.list_dir(b"wide").expect("list_dir");
    let warm = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(entries.len(), 100_000);
    assert_eq!(again.len(), 100_000);
    println!("list_dir: 100000 entries: {cold:.0} ms cold (fresh open), {warm:.0} ms warm");
}

fn write_tree_to_disk(root: &Path, files: &[(String, Vec<u8>)]) {
    let _ = std::fs::remove_dir_all(root);
    for (p, d) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, d).expect("write");
    }
}

fn backup_dir(pool: &Pool, host: &str, root: &Path) {
    let reference = pool.latest(host).expect("list").map(|i| i.id);
    let mut w = pool
        .begin_snapshot(host, BackupType::Full, reference.as_ref())
        .expect("begin");
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                w.add(Entry::new(rel.into_bytes(), EntryKind::Directory))
                    .expect("add");
                stack.push(p);
            } else {
                put(&mut w, rel.as_bytes(), &std::fs::read(&p).expect("read"));
            }
        }
    }
    w.commit(CommitInfo::default()).expect("commit");
}

fn phase_restic(work: &Path) {
    // Host A: ~300 files, 1 KiB .. 8 MiB; host B shares 90% of them and has its own 10%.
    let mut rng = fastrand::Rng::with_seed(9);
    let mut a: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..300u64 {
        let len = if i % 20 == 0 {
            rng.usize(2 << 20..8 << 20)
        } else {
            rng.usize(1024..400 << 10)
        };
        a.push((format!("srv/d{}/f{i}", i % 12), mixed_data(len, 100 + i)));
    }
    let mut b: Vec<(String, Vec<u8>)> = a.iter().filter(|_| rng.u8(0..10) != 0).cloned().collect();
    for i in 0..30u64 {
        b.push((
            format!("home/b/f{i}"),
            mixed_data(rng.usize(1024..300 << 10), 1000 + i),
        ));
    }
    // The change between the two backups: 5% of files rewritten, big files edited in the middle,
    // a few appended to.
    let change = |files: &mut Vec<(String, Vec<u8>)>, seed: u64| {
        let mut rng = fastrand::Rng::with_seed(seed);
        for (i, (_, d)) in files.iter_mut().enumerate() {
            match rng.u8(0..40) {
                0 | 1 => *d = mixed_data(d.len(), seed * 7919 + i as u64),
                2 => d.extend_from_slice(&mixed_data(20_000, seed + i as u64)),
                3 if d.len() > 1 << 20 => {
                    let mid = d.len() / 2;
                    d[mid..mid + 100].copy_from_slice(&[7u8; 100]);
                }
                _ => {}
            }
        }
    };
    let src = work.join("src");
    let pool_dir = work.join("twohosts");
    let repo = work.join("restic-repo");
    let pool = Pool::create(&pool_dir, PoolOptions::default()).expect("pool");
    let restic_ok = Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if restic_ok {
        let st = Command::new("restic")
            .args(["init", "--repo"])
            .arg(&repo)
            .env("RESTIC_PASSWORD", "bench")
            .output()
            .expect("restic init");
        assert!(
            st.status.success(),
            "restic init: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let logical: u64 = a.iter().chain(b.iter()).map(|(_, d)| d.len() as u64).sum();
    for round in 0..2 {
        if round == 1 {
            change(&mut a, 11);
            change(&mut b, 12);
        }
        for (host, files) in [("hostA", &a), ("hostB", &b)] {
            let root = src.join(host);
            write_tree_to_disk(&root, files);
            backup_dir(&pool, host, &root);
            if restic_ok {
                let st = Command::new("restic")
                    .args(["backup", "--quiet", "--host", host, "--repo"])
                    .arg(&repo)
                    .arg(".")
                    .current_dir(&root)
                    .env("RESTIC_PASSWORD", "bench")
                    .output()
                    .expect("restic backup");
                assert!(
                    st.status.success(),
                    "restic backup: {}",
                    String::from_utf8_lossy(&st.stderr)
                );
            }
        }
    }
    drop(pool);
    let ours = dir_bytes(&pool_dir);
    let packs = dir_bytes(&pool_dir.join("packs"));
    if restic_ok {
        let theirs = dir_bytes(&repo);
        println!(
            "two hosts x two backups ({:.0} MB logical per round): hoard pool {:.1} MB (packs {:.1} MB + index {:.1} MB) vs restic repository {:.1} MB: ratio {:.3}",
            logical as f64 / 1e6,
            ours as f64 / 1e6,
            packs as f64 / 1e6,
            (ours - packs) as f64 / 1e6,
            theirs as f64 / 1e6,
            ours as f64 / theirs as f64
        );
    } else {
        println!(
            "two hosts x two backups: hoard pool {:.1} MB; restic not installed, no comparison",
            ours as f64 / 1e6
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let work = PathBuf::from(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp/hoard-pool-bench".into()),
    );
    match args.get(1).map(String::as_str) {
        Some("ingest") => phase_ingest(&work),
        Some("small") => phase_small_files(&work),
        Some("incremental-spread") => phase_incremental(&work, false),
        Some("incremental-clustered") => phase_incremental(&work, true),
        Some("list") => phase_list(&work),
        Some("restic") => phase_restic(&work),
        _ => {
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).expect("bench dir");
            let exe = std::env::current_exe().expect("own path");
            for phase in [
                "ingest",
                "small",
                "incremental-spread",
                "incremental-clustered",
                "list",
                "restic",
            ] {
                let status = Command::new(&exe)
                    .arg(phase)
                    .env("BENCH_DIR", &work)
                    .status()
                    .expect("phase");
                assert!(status.success(), "phase {phase} failed");
            }
            let _ = std::fs::remove_dir_all(&work);
        }
    }
}
