//! Damage on disk: bytes flipped inside a pack. fsck must name the damaged objects, snapshots
//! and paths; reads of damaged files must fail, never return wrong bytes; the rest still reads.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::FileExt;

use common::{new_pool, put, random_bytes};
use hoard_pool::{BackupType, CommitInfo, FsckOptions, GcOptions};

fn pack_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join("packs")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn flipped_bytes_are_found_and_never_read_back() {
    let (_d, pool) = new_pool();
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..60u64)
        .map(|i| {
            (
                format!("dir{}/file{i}", i % 4).into_bytes(),
                random_bytes(3000 + (i as usize * 1500), i),
            )
        })
        .collect();
    let mut ids = Vec::new();
    for host in ["h1", "h2"] {
        let mut w = pool.begin_snapshot(host, BackupType::Full, None).unwrap();
        for (p, d) in &files {
            put(&mut w, p, d);
        }
        put(&mut w, format!("only-{host}").as_bytes(), host.as_bytes());
        ids.push(w.commit(CommitInfo::default()).unwrap().id);
    }
    assert!(pool.fsck(&FsckOptions::default()).unwrap().is_clean());

    // Flip bytes in the middle of every pack file (data objects and trees alike).
    let packs = pack_files(pool.dir());
    assert!(!packs.is_empty());
    for pack in &packs {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pack)
            .unwrap();
        let len = f.metadata().unwrap().len();
        for frac in [3u64, 2] {
            let off = len / frac;
            let mut b = [0u8; 4];
            f.read_exact_at(&mut b, off).unwrap();
            for x in &mut b {
                *x ^= 0x5a;
            }
            f.write_all_at(&b, off).unwrap();
        }
    }

    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(!report.is_clean());
    assert!(!report.corrupt.is_empty());
    assert!(!report.damaged_paths.is_empty());
    let corrupt: HashSet<_> = report.corrupt.iter().map(|d| d.id).collect();
    for d in &report.damaged_paths {
        assert!(corrupt.contains(&d.object) || report.missing.contains(&d.object));
        assert!(ids.contains(&d.snapshot));
    }
    // Shared content is damaged in both hosts' snapshots.
    let snaps: HashSet<_> = report.damaged_snapshots.iter().cloned().collect();
    assert_eq!(snaps.len(), 2, "{report:#?}");

    // Every file either reads exactly or errors; the damaged ones named by fsck error.
    let damaged: HashSet<Vec<u8>> = report
        .damaged_paths
        .iter()
        .map(|d| d.path.0.clone())
        .collect();
    let mut errors = 0;
    for id in &ids {
        let r = pool.snapshot(id).unwrap();
        for (p, d) in &files {
            let whole = r.read_file(p);
            let mut streamed = Vec::new();
            let stream = r.open_file(p).and_then(|mut f| {
                f.read_to_end(&mut streamed)
                    .map_err(|e| hoard_pool::PoolError::Io {
                        op: "reading",
                        path: "x".into(),
                        source: e,
                    })
            });
            match whole {
                Ok(bytes) => {
                    assert!(
                        bytes == *d,
                        "wrong bytes for {}",
                        String::from_utf8_lossy(p)
                    );
                    assert!(stream.is_ok() && streamed == *d);
                    assert!(!damaged.contains(p) || r.lookup(p).is_err());
                }
                Err(_) => {
                    errors += 1;
                    assert!(stream.is_err());
                    let named = damaged.contains(p)
                        || damaged
                            .iter()
                            .any(|dir| p.starts_with(dir) && p.get(dir.len()) == Some(&b'/'));
                    assert!(
                        named,
                        "{} fails to read but fsck did not name it",
                        String::from_utf8_lossy(p)
                    );
                }
            }
        }
    }
    assert!(errors > 0);

    // GC refuses to repack a pack with corrupt objects, and does not make things worse.
    let _ = pool.gc(&GcOptions::default());
    let again = pool.fsck(&FsckOptions::default()).unwrap();
    assert_eq!(again.corrupt.len(), report.corrupt.len());
}

#[test]
fn missing_pack_is_reported() {
    let (_d, pool) = new_pool();
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    put(&mut w, b"a", &random_bytes(10_000, 1));
    let id = w.commit(CommitInfo::default()).unwrap().id;
    for p in pack_files(pool.dir()) {
        std::fs::remove_file(p).unwrap();
    }
    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(!report.is_clean());
    assert!(report.damaged_paths.iter().any(|d| d.snapshot == id));
    assert!(pool.snapshot(&id).unwrap().read_file(b"a").is_err());
}
