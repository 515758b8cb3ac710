//! Benchmark of the first complete path (issue 4's figures): a generated tree of about 1 GiB
//! in 20,000 files, backed up over ssh on loopback with the tar plugin (full, then a
//! no-change incremental), with wall time, CPU and peak RSS of `hoard`, and the pool's size;
//! in the same run, `tar -cf - TREE | zstd -3 > /dev/null` over the same tree and a second
//! `rsync -a TREE COPY` onto an up-to-date copy. For scale, it also times the same full
//! without ssh (`localhost`) and the same tar stream through OpenSSH into zstd.
//!
//! Run with `scripts/bench-backup.sh [FILES] [TOTAL_MIB]` (release build of `hoard` first).

mod support;

use std::process::Command;

use hoard_conformance::peers::SshdPeer;
use support::{FULL_RUNS, RUNS, du, measured, median, reaped_children_cpu, timed, walls};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = support::BenchArgs::read("/tmp/hoard-bench");
    let (tree, tree_bytes) = args.generated_tree()?;
    let support::BenchArgs { hoard, base, .. } = args;

    let peer = SshdPeer::start()?;
    // The tree was just written, so its ctimes are all within the tar plugin's clock-skew
    // margin (`time-margin`, 300 s) of the full; on a real client most files are older.
    // A margin of 0 measures what a no-change incremental costs there.
    let (config, pool) =
        support::write_config(&base, "tar", &peer, &tree, "\"time-margin\": \"0\"")?;
    let backup = |level: &str| {
        support::hoard_command(&hoard, &config, &["backup", "bench", level, "--json"])
    };
    // Compile the plugin into the cache first, so the figures are the backup's own.
    timed(
        "plugin list",
        &mut support::hoard_command(&hoard, &config, &["plugin", "list"]),
    );

    // The same full without ssh: the host `localhost` runs tar as hoard's own child.
    std::fs::write(
        config.join("hosts/localhost.ron"),
        format!("(shares: [{tree:?}])"),
    )?;
    let locals: Vec<_> = (0..FULL_RUNS)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&pool);
            timed(
                "local full backup",
                &mut support::hoard_command(
                    &hoard,
                    &config,
                    &["backup", "localhost", "--full", "--json"],
                ),
            )
        })
        .collect();
    let (local_wall, local_cpu) = median(locals.clone());

    // Each full starts from an empty pool, so that every run stores the whole tree.
    let client_cpu_before = reaped_children_cpu(peer.pid());
    let fulls: Vec<_> = (0..FULL_RUNS)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&pool);
            measured("full backup", &mut backup("--full"))
        })
        .collect();
    let full_rss = fulls.iter().map(|run| run.max_rss_kib).max().unwrap_or(0);
    let fulls: Vec<_> = fulls.iter().map(|run| (run.wall, run.cpu)).collect();
    let full_client_cpu = (reaped_children_cpu(peer.pid()) - client_cpu_before) / FULL_RUNS as u32;
    let (full_wall, full_cpu) = median(fulls.clone());
    let pool_after_full = du(&pool);
    // The short runs are repeated and their median taken: one run is at the mercy of noise.
    let incrementals: Vec<_> = (0..RUNS)
        .map(|_| timed("incremental backup", &mut backup("--incr")))
        .collect();
    let (incr_wall, incr_cpu) = median(incrementals.clone());
    let pool_after_incr = du(&pool);

    let tars: Vec<_> = (0..FULL_RUNS)
        .map(|_| {
            timed(
                "tar | zstd",
                Command::new("sh").arg("-c").arg(format!(
                    "tar -cf - -C {} . | zstd -3 -q > /dev/null",
                    tree.display()
                )),
            )
        })
        .collect();
    let (tar_wall, tar_cpu) = median(tars.clone());
    // The same stream through OpenSSH on both ends, with the cipher hoard picks on a CPU with
    // AES instructions: what any transport over ssh pays on this machine before it stores a
    // byte.
    let ssh_tars: Vec<_> = (0..FULL_RUNS)
        .map(|_| {
            timed(
                "ssh tar | zstd",
                Command::new("sh").arg("-c").arg(format!(
                    "ssh -c aes256-gcm@openssh.com -p {} -i {} -o UserKnownHostsFile={} \
                     -o BatchMode=yes {}@{} \
                     'tar -cf - -C {} .' | zstd -3 -q > /dev/null",
                    peer.port(),
                    peer.client_key().display(),
                    peer.known_hosts().display(),
                    peer.user(),
                    peer.address(),
                    tree.display()
                )),
            )
        })
        .collect();
    let (ssh_tar_wall, ssh_tar_cpu) = median(ssh_tars.clone());
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
        "full over ssh:            wall {full_wall:.2?}, hoard CPU {full_cpu:.2?} (median of {FULL_RUNS}: {}), peak RSS of hoard {} MiB",
        walls(&fulls),
        full_rss / 1024
    );
    println!(
        "  client side (sshd, tar) on the same 2 cores: CPU {full_client_cpu:.2?} per full (mean)"
    );
    println!(
        "  both sides' CPU over the 2 cores: {:.2?}, the least wall time any scheduling allows",
        (full_cpu + full_client_cpu) / 2
    );
    println!(
        "  pool after the full:    {:.1} MiB ({:.2}x of the tree)",
        mib(pool_after_full),
        pool_after_full as f64 / tree_bytes as f64
    );
    println!(
        "full without ssh (localhost, tar as hoard's child): wall {local_wall:.2?}, hoard and tar CPU {local_cpu:.2?} (median of {FULL_RUNS}: {})",
        walls(&locals)
    );
    println!(
        "no-change incremental:    wall {incr_wall:.2?}, hoard CPU {incr_cpu:.2?} (median of {RUNS}: {}); pool grew {:.2} MiB",
        walls(&incrementals),
        mib(pool_after_incr.saturating_sub(pool_after_full))
    );
    println!(
        "tar -cf - | zstd -3:      wall {tar_wall:.2?}, CPU {tar_cpu:.2?} (median of {FULL_RUNS}: {})",
        walls(&tars)
    );
    println!(
        "ssh HOST tar -cf - | zstd -3 (OpenSSH, aes256-gcm): wall {ssh_tar_wall:.2?}, CPU {ssh_tar_cpu:.2?} of the local side (median of {FULL_RUNS}: {})",
        walls(&ssh_tars)
    );
    println!(
        "second rsync -a (no change): wall {rsync_wall:.2?}, CPU {rsync_cpu:.2?} (median of {RUNS}: {})",
        walls(&rsyncs)
    );
    println!(
        "ratios: full / tar pipeline = {:.2} (target <= 1.5); no-change incremental / rsync = {:.2} (target <= 2)",
        full_wall.as_secs_f64() / tar_wall.as_secs_f64(),
        incr_wall.as_secs_f64() / rsync_wall.as_secs_f64()
    );
    println!(
        "        full / the same tar stream over OpenSSH into zstd = {:.2}; full without ssh / tar pipeline = {:.2}",
        full_wall.as_secs_f64() / ssh_tar_wall.as_secs_f64(),
        local_wall.as_secs_f64() / tar_wall.as_secs_f64()
    );
    Ok(())
}
