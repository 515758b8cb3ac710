//! Crash safety: a helper process writing snapshots (and sometimes running GC first) is killed
//! with SIGKILL at random moments; after every kill the pool must fsck clean and every
//! committed snapshot must read back byte-identical.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::generator::{test_options, verify};
use hoard_pool::{FsckOptions, GcOptions, Pool, SnapshotId};

const TRIALS: u64 = 24;

#[test]
fn sigkill_at_random_points_leaves_committed_snapshots_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool");
    drop(Pool::create(&path, test_options()).unwrap());
    let helper = env!("CARGO_BIN_EXE_pool-crash-writer");
    let mut rng = fastrand::Rng::with_seed(0x5EED);
    let mut committed: Vec<(u64, u64)> = Vec::new();
    let mut deleted: Vec<u64> = Vec::new();
    let mut kills_mid_run = 0;
    for trial in 0..TRIALS {
        let first_seed = 1 + trial * 100;
        let gc_first = if trial % 3 == 2 { "1" } else { "0" };
        let mut child = Command::new(helper)
            .args([
                path.to_str().unwrap(),
                "crashhost",
                &first_seed.to_string(),
                "1000",
                gc_first,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.u64(30..700);
        std::thread::sleep(Duration::from_millis(delay));
        // SAFETY: kill(2) on the pid of a child we spawned and have not yet reaped.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let status = child.wait().unwrap();
        if status.code().is_none() {
            kills_mid_run += 1;
        }
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("COMMITTED ") {
                let mut parts = rest.split(' ');
                let number: u64 = parts.next().unwrap().parse().unwrap();
                let seed: u64 = parts.next().unwrap().parse().unwrap();
                committed.push((number, seed));
            }
        }

        let pool = Pool::open(&path).unwrap();
        let report = pool.fsck(&FsckOptions::default()).unwrap();
        assert!(
            report.is_clean(),
            "trial {trial} (killed after {delay} ms): {report:#?}"
        );
        let snapshots = pool.snapshots("crashhost").unwrap();
        eprintln!(
            "trial {trial}: killed after {delay} ms, {} snapshots, {} orphan packs, {} unreferenced objects",
            snapshots.len(),
            report.orphan_packs.len(),
            report.unreferenced_objects
        );
        for (number, _) in &committed {
            assert!(
                deleted.contains(number) || snapshots.iter().any(|s| s.id.number == *number),
                "trial {trial}: committed snapshot {number} vanished"
            );
        }
        // Every snapshot in the catalog (including one committed just before the kill, whose
        // line was never printed) must match the content its seed describes.
        for info in &snapshots {
            let seed: u64 = info.comment.parse().unwrap();
            verify(&pool.snapshot(&info.id).unwrap(), seed).unwrap_or_else(|e| {
                panic!("trial {trial}: snapshot {} (seed {seed}): {e}", info.id)
            });
        }
        // Keep the work per trial bounded: drop all but the last three snapshots, and collect.
        if snapshots.len() > 3 {
            for info in &snapshots[..snapshots.len() - 3] {
                pool.delete_snapshot(&SnapshotId::new("crashhost", info.id.number))
                    .unwrap();
                deleted.push(info.id.number);
            }
        }
        if trial % 4 == 3 {
            let gc = pool.gc(&GcOptions::default()).unwrap();
            let report = pool.fsck(&FsckOptions::default()).unwrap();
            assert!(report.is_clean(), "after gc {gc:?}: {report:#?}");
            assert_eq!(report.orphan_packs.len(), 0);
            assert_eq!(report.unreferenced_objects, 0, "{gc:?}");
            for info in pool.snapshots("crashhost").unwrap() {
                verify(
                    &pool.snapshot(&info.id).unwrap(),
                    info.comment.parse().unwrap(),
                )
                .unwrap();
            }
        }
    }
    assert!(
        kills_mid_run as u64 >= TRIALS * 3 / 4,
        "only {kills_mid_run} kills landed mid-run"
    );
    assert!(
        committed.len() >= 5,
        "only {} snapshots committed in all trials",
        committed.len()
    );
}
