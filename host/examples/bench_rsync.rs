//! Benchmark of the rsync transport (issue 7's figures): the generated tree of about 1 GiB in
//! 20,000 files backed up over ssh on loopback with the rsync plugin: a full, a no-change
//! incremental, and an incremental after 2% of the files (the largest) had 100 bytes changed
//! in place; for each, the wall time and the bytes received from the client (the plugin
//! counts them). In the same run, `rsync -a` of the same tree into a local directory, its
//! no-change second run, and its run after the same change with `--no-whole-file --stats`
//! (a local rsync copies whole files otherwise), whose "Total bytes sent" is the delta rsync
//! itself moves.
//!
//! Run with `scripts/bench-rsync.sh [FILES] [TOTAL_MIB]` (release build of `hoard` first).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hoard_conformance::peers::SshdPeer;
use support::{RUNS, median, timed, walls};

/// The byte count the plugin logged as received from the client in a backup's job log.
fn bytes_received(pool: &Path, number: usize) -> u64 {
    let log = std::fs::read_to_string(pool.join(format!("logs/bench/{number}.jsonl")))
        .unwrap_or_default();
    log.split(" bytes received from the client")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Changes 100 bytes in the middle of the largest 2% of the files, keeping their sizes.
fn edit_largest(tree: &Path, share: f64) -> std::io::Result<usize> {
    let mut files = Vec::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && entry.file_name() != ".complete" {
                files.push((meta.len(), entry.path()));
            }
        }
    }
    let count = ((files.len() as f64) * share).ceil() as usize;
    files.sort_by(|a, b| b.cmp(a));
    for (len, path) in files.iter().take(count) {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.seek(SeekFrom::Start(len / 2))?;
        file.write_all(&[0x5a; 100])?;
    }
    // The tree is no longer the generated one.
    let _ = std::fs::remove_file(tree.join(".complete"));
    Ok(count)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = support::BenchArgs::read("/tmp/hoard-bench-rsync");
    let (tree, _) = args.generated_tree()?;
    let support::BenchArgs { hoard, base, .. } = args;

    let peer = SshdPeer::start()?;
    let (config, pool) = support::write_config(&base, "rsync", &peer, &tree, "")?;
    let backup = |level: &str| {
        support::hoard_command(&hoard, &config, &["backup", "bench", level, "--json"])
    };
    timed(
        "plugin list",
        &mut support::hoard_command(&hoard, &config, &["plugin", "list"]),
    );

    let mut number = 0;
    let (full_wall, _) = timed("full backup", &mut backup("--full"));
    let full_bytes = bytes_received(&pool, number);
    let mut incrementals = Vec::new();
    for _ in 0..RUNS {
        incrementals.push(timed("incremental backup", &mut backup("--incr")));
        number += 1;
    }
    let no_change_bytes = bytes_received(&pool, number);
    let (incr_wall, _) = median(incrementals.clone());

    let copy = base.join("rsync-copy");
    let _ = std::fs::remove_dir_all(&copy);
    let rsync = |extra: &[&str]| {
        let mut c = Command::new("rsync");
        c.arg("-a")
            .args(extra)
            .arg(format!("{}/", tree.display()))
            .arg(format!("{}/", copy.display()));
        c
    };
    let (rsync_first_wall, _) = timed("rsync first", &mut rsync(&[]));
    let seconds: Vec<_> = (0..RUNS)
        .map(|_| timed("rsync second", &mut rsync(&[])))
        .collect();
    let (rsync_second_wall, _) = median(seconds.clone());

    let changed = edit_largest(&tree, 0.02)?;
    let (edit_wall, _) = timed("incremental after edits", &mut backup("--incr"));
    number += 1;
    let edit_bytes = bytes_received(&pool, number);
    let output = rsync(&["--no-whole-file", "--stats"]).output()?;
    let stats = String::from_utf8_lossy(&output.stdout);
    let rsync_edit_bytes: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("Total bytes sent: "))
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "full backup:                {full_wall:>10.2?}  {full_bytes:>12} bytes from the client"
    );
    println!(
        "no-change incremental:      {incr_wall:>10.2?}  {no_change_bytes:>12} bytes  (runs: {})",
        walls(&incrementals)
    );
    println!("incremental, {changed} files edited: {edit_wall:>10.2?}  {edit_bytes:>12} bytes");
    println!("rsync -a first:             {rsync_first_wall:>10.2?}");
    println!(
        "rsync -a no change:         {rsync_second_wall:>10.2?}  (runs: {})",
        walls(&seconds)
    );
    println!("rsync --no-whole-file after the edits: {rsync_edit_bytes} bytes sent");
    println!(
        "no-change incremental / rsync no change: {:.2}x (target 1.5x)",
        ratio(incr_wall, rsync_second_wall)
    );
    println!(
        "small-edit bytes / rsync's:              {:.2}x (target 1.2x)",
        edit_bytes as f64 / (rsync_edit_bytes.max(1)) as f64
    );
    Ok(())
}
