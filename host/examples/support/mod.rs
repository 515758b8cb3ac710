//! What the benchmark examples share: timing a command with the CPU it used, medians of
//! repeated runs, disk usage, and the generated tree of files they back up.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// CPU time of the reaped children of process `pid` (user and system, from `/proc`).
pub fn reaped_children_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after the name.
    let ticks: u64 = [13, 14]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system setting.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// What one run of a command cost.
pub struct Measured {
    pub wall: Duration,
    /// CPU time, user and system, of the command and the children it waited for.
    pub cpu: Duration,
    /// Peak resident memory of the command itself (the largest of it and its waited-for
    /// children), read from this run alone: `RUSAGE_CHILDREN` would report the largest child
    /// this process ever had, the build that ran before it included.
    pub max_rss_kib: i64,
}

/// Runs a command to its end (its standard output thrown away), measuring it on its own.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reports its resource usage"
)]
pub fn measured(what: &str, command: &mut Command) -> Measured {
    use std::io::Read;
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let mut status = 0;
    // SAFETY: wait4 fills the zeroed struct it is given; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(reaped, pid, "{what}: wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed: {stderr}"
    );
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// Runs a command, returning wall time and the CPU it (and its children) used.
pub fn timed(what: &str, command: &mut Command) -> (Duration, Duration) {
    let run = measured(what, command);
    (run.wall, run.cpu)
}

/// How many times the short runs are repeated.
pub const RUNS: usize = 5;

/// How many times the long runs (a full backup and what it is compared with) are repeated.
pub const FULL_RUNS: usize = 3;

/// The run with the median wall time.
pub fn median(mut runs: Vec<(Duration, Duration)>) -> (Duration, Duration) {
    runs.sort();
    runs[runs.len() / 2]
}

/// The wall times of `runs`, for the record.
pub fn walls(runs: &[(Duration, Duration)]) -> String {
    runs.iter()
        .map(|(wall, _)| format!("{wall:.2?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn du(path: &Path) -> u64 {
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
pub fn generate(root: &Path, files: usize, total: u64) -> std::io::Result<()> {
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

/// A config folder under `base` whose host `bench` is the sshd `peer`, backing up `tree` with
/// `transport` (and `settings`, RON map entries); the pool starts empty. Returns the config
/// folder and the pool.
pub fn write_config(
    base: &Path,
    transport: &str,
    peer: &hoard_conformance::peers::SshdPeer,
    tree: &Path,
    settings: &str,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let config = base.join("config");
    let pool = base.join("pool");
    let _ = std::fs::remove_dir_all(&pool);
    std::fs::create_dir_all(config.join("hosts"))?;
    std::fs::write(
        config.join("hoard.ron"),
        format!(
            "(pool: {:?}, cache_dir: {:?}, defaults: (transport: {transport:?}))",
            pool,
            base.join("cache")
        ),
    )?;
    std::fs::write(
        config.join("hosts/bench.ron"),
        format!(
            "(address: \"127.0.0.1\", ssh: (user: {:?}, port: {}, key: {:?}, known_hosts: {:?}), shares: [{:?}], plugin_settings: {{{settings}}})",
            peer.user(),
            peer.port(),
            peer.client_key(),
            peer.known_hosts(),
            tree
        ),
    )?;
    Ok((config, pool))
}

/// `hoard --config CONFIG ARGS...`.
pub fn hoard_command(hoard: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(hoard);
    c.arg("--config").arg(config).args(args);
    c
}

/// What a benchmark run is given: `[FILES] [TOTAL_MIB]` on the command line (20,000 files,
/// 1 GiB), `HOARD_BIN` (the release `hoard`) and `BENCH_DIR` (default `default_dir`).
pub struct BenchArgs {
    /// Files in the generated tree.
    pub files: usize,
    /// Its total size in bytes.
    pub total: u64,
    /// The `hoard` binary.
    pub hoard: std::path::PathBuf,
    /// The folder the tree, pool and config live in.
    pub base: std::path::PathBuf,
}

impl BenchArgs {
    /// Reads them from the command line and the environment.
    pub fn read(default_dir: &str) -> BenchArgs {
        let number = |i: usize| std::env::args().nth(i).and_then(|a| a.parse::<u64>().ok());
        BenchArgs {
            files: number(1).map_or(20_000, |n| n as usize),
            total: number(2).unwrap_or(1024) << 20,
            hoard: std::env::var("HOARD_BIN")
                .unwrap_or_else(|_| "target/release/hoard".into())
                .into(),
            base: std::env::var("BENCH_DIR")
                .unwrap_or_else(|_| default_dir.into())
                .into(),
        }
    }

    /// Generates the tree (`BASE/tree`, kept from an earlier run when complete), prints its
    /// size and returns its path and bytes on disk.
    pub fn generated_tree(&self) -> std::io::Result<(std::path::PathBuf, u64)> {
        let tree = self.base.join("tree");
        generate(&tree, self.files, self.total)?;
        let bytes = du(&tree);
        println!(
            "tree: {} files, {:.1} MiB on disk",
            self.files,
            bytes as f64 / (1 << 20) as f64
        );
        Ok((tree, bytes))
    }
}
