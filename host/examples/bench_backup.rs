//! Benchmark of the first complete path (issue 4's figures): a generated tree of about 1 GiB
//! in 20,000 files, backed up over ssh on loopback with the tar plugin (full, then a
//! no-change incremental), with wall time, CPU and peak RSS of `hoard`, and the pool's size;
//! in the same run, `tar -cf - TREE | zstd -3 > /dev/null` over the same tree and a second
//! `rsync -a TREE COPY` onto an up-to-date copy.
//!
//! Run with `scripts/bench-backup.sh [FILES] [TOTAL_MIB]` (release build of `hoard` first).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hoard_conformance::peers::SshdPeer;

struct Usage {
    cpu: Duration,
    max_rss_kib: i64,
}

fn children_usage() -> Usage {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Usage {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// Runs a command, returning wall time and the CPU it (and its children) used.
fn timed(what: &str, command: &mut Command) -> (Duration, Duration) {
    let before = children_usage();
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = children_usage();
    (wall, after.cpu - before.cpu)
}

/// How many times the short runs (no-change incremental, second rsync) are repeated.
const RUNS: usize = 5;

/// The run with the median wall time.
fn median(mut runs: Vec<(Duration, Duration)>) -> (Duration, Duration) {
    runs.sort();
    runs[runs.len() / 2]
}

/// The wall times of `runs`, for the record.
fn walls(runs: &[(Duration, Duration)]) -> String {
    runs.iter()
        .map(|(wall, _)| format!("{wall:.2?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn du(path: &Path) -> u64 {
    let output = Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// 20,000 files with a mix of incompressible and text-like content, about `total` bytes.
fn generate(root: &Path, files: usize, total: u64) -> std::io::Result<()> {
    if root.join(".complete").exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(root);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let average = total / files as u64;
    let words = b"backup pool share snapshot restore client server plugin stream chunk ";
    for i in 0..files {
        let dir = root.join(format!("d{:03}/s{:02}", i % 200, (i / 200) % 20));
        std::fs::create_dir_all(&dir)?;
        let size = (next() % (2 * average)) as usize;
        let mut data = Vec::with_capacity(size);
        if i % 2 == 0 {
            while data.len() < size {
                data.extend_from_slice(&next().to_le_bytes());
            }
        } else {
            while data.len() < size {
                let w = (next() % 60) as usize;
                data.extend_from_slice(&words[w..w + 10]);
            }
        }
        data.truncate(size);
        std::fs::File::create(dir.join(format!("f{i:05}.dat")))?.write_all(&data)?;
    }
    std::fs::write(root.join(".complete"), b"")?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let total_mib: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let hoard =
        PathBuf::from(std::env::var("HOARD_BIN").unwrap_or_else(|_| "target/release/hoard".into()));
    let base =
        PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp/hoard-bench".into()));
    let tree = base.join("tree");
    generate(&tree, files, total_mib << 20)?;
    let tree_bytes = du(&tree);
    println!(
        "tree: {files} files, {:.1} MiB on disk",
        tree_bytes as f64 / (1 << 20) as f64
    );

    let peer = SshdPeer::start()?;
    let config = base.join("config");
    let pool = base.join("pool");
    let _ = std::fs::remove_dir_all(&pool);
    std::fs::create_dir_all(config.join("hosts"))?;
    std::fs::write(
        config.join("hoard.ron"),
        format!(
            "(pool: {:?}, cache_dir: {:?}, defaults: (transport: \"tar\"))",
            pool,
            base.join("cache")
        ),
    )?;
    std::fs::write(
        config.join("hosts/bench.ron"),
        format!(
            // The tree was just written, so its ctimes are all within the tar plugin's clock-skew
            // margin (`time-margin`, 300 s) of the full; on a real client most files are older.
            // A margin of 0 measures what a no-change incremental costs there.
            "(address: \"127.0.0.1\", ssh: (user: {:?}, port: {}, key: {:?}, known_hosts: {:?}), shares: [{:?}], plugin_settings: {{\"time-margin\": \"0\"}})",
            peer.user(),
            peer.port(),
            peer.client_key(),
            peer.known_hosts(),
            tree
        ),
    )?;
    let backup = |level: &str| {
        let mut c = Command::new(&hoard);
        c.arg("--config")
            .arg(&config)
            .args(["backup", "bench", level, "--json"]);
        c
    };
    // Compile the plugin into the cache first, so the figures are the backup's own.
    timed(
        "plugin list",
        Command::new(&hoard)
            .arg("--config")
            .arg(&config)
            .args(["plugin", "list"]),
    );

    let (full_wall, full_cpu) = timed("full backup", &mut backup("--full"));
    let full_rss = children_usage().max_rss_kib;
    let pool_after_full = du(&pool);
    // The short runs are repeated and their median taken: one run is at the mercy of noise.
    let incrementals: Vec<_> = (0..RUNS)
        .map(|_| timed("incremental backup", &mut backup("--incr")))
        .collect();
    let (incr_wall, incr_cpu) = median(incrementals.clone());
    let pool_after_incr = du(&pool);

    let (tar_wall, tar_cpu) = timed(
        "tar | zstd",
        Command::new("sh").arg("-c").arg(format!(
            "tar -cf - -C {} . | zstd -3 -q > /dev/null",
            tree.display()
        )),
    );
    let copy = base.join("rsync-copy");
    let _ = std::fs::remove_dir_all(&copy);
    timed(
        "rsync first",
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", tree.display()))
            .arg(&copy),
    );
    let rsyncs: Vec<_> = (0..RUNS)
        .map(|_| {
            timed(
                "rsync second",
                Command::new("rsync")
                    .arg("-a")
                    .arg(format!("{}/", tree.display()))
                    .arg(&copy),
            )
        })
        .collect();
    let (rsync_wall, rsync_cpu) = median(rsyncs.clone());

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "full over ssh:            wall {full_wall:.2?}, hoard CPU {full_cpu:.2?}, peak RSS of hoard {} MiB",
        full_rss / 1024
    );
    println!(
        "  pool after the full:    {:.1} MiB ({:.2}x of the tree)",
        mib(pool_after_full),
        pool_after_full as f64 / tree_bytes as f64
    );
    println!(
        "no-change incremental:    wall {incr_wall:.2?}, hoard CPU {incr_cpu:.2?} (median of {RUNS}: {}); pool grew {:.2} MiB",
        walls(&incrementals),
        mib(pool_after_incr - pool_after_full)
    );
    println!("tar -cf - | zstd -3:      wall {tar_wall:.2?}, CPU {tar_cpu:.2?}");
    println!(
        "second rsync -a (no change): wall {rsync_wall:.2?}, CPU {rsync_cpu:.2?} (median of {RUNS}: {})",
        walls(&rsyncs)
    );
    println!(
        "ratios: full / tar pipeline = {:.2} (target <= 1.5); no-change incremental / rsync = {:.2} (target <= 2)",
        full_wall.as_secs_f64() / tar_wall.as_secs_f64(),
        incr_wall.as_secs_f64() / rsync_wall.as_secs_f64()
    );
    Ok(())
}
