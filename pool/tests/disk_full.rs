//! A failing write (injected, and a real full tmpfs when the test may mount one): the writer
//! reports a clear disk-full error, committed snapshots stay readable, fsck stays clean, and
//! the pool keeps working once space is back.

mod common;

use std::io::Write;
use std::process::Command;

use common::generator::{commit_seed, test_options, verify};
use common::random_bytes;
use hoard_pool::{
    BackupType, CommitInfo, Entry, EntryKind, FsckOptions, GcOptions, Pool, PoolError, PoolOptions,
    WriteFaults,
};

/// Writes a big incompressible file; returns the first error met (on write, finish or commit).
fn try_big_snapshot(pool: &Pool, host: &str, len: usize) -> Result<(), PoolError> {
    let mut w = pool.begin_snapshot(host, BackupType::Full, None)?;
    let mut f = w.begin_file(Entry::new(b"big".to_vec(), EntryKind::File))?;
    for piece in random_bytes(len, 99).chunks(64 * 1024) {
        if let Err(e) = f.write_all(piece) {
            let inner = e.into_inner().and_then(|b| b.downcast::<PoolError>().ok());
            return Err(inner
                .map(|b| *b)
                .unwrap_or(PoolError::InvalidOptions("unexpected io error".into())));
        }
    }
    f.finish()?;
    w.commit(CommitInfo::default())?;
    Ok(())
}

#[test]
fn injected_write_failure_leaves_a_consistent_pool() {
    let dir = tempfile::tempdir().unwrap();
    let faults = WriteFaults::fail_after(u64::MAX);
    let pool = Pool::create(
        dir.path().join("pool"),
        PoolOptions {
            write_faults: Some(faults.clone()),
            ..test_options()
        },
    )
    .unwrap();
    let good = commit_seed(&pool, "h", 1);

    for budget in [0u64, 10_000, 300_000, 700_000] {
        faults.set_remaining(budget);
        let err = try_big_snapshot(&pool, "h", 2_000_000).expect_err("the write must fail");
        assert!(err.is_disk_full(), "budget {budget}: {err}");
        assert!(err.to_string().contains("disk full"), "{err}");
        // Data buffered before the pack is flushed fails at commit, with the same error.
        faults.set_remaining(0);
        let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
        let mut f = w
            .begin_file(Entry::new(b"x".to_vec(), EntryKind::File))
            .unwrap();
        f.write_all(&random_bytes(100_000, 1)).unwrap();
        f.finish().unwrap();
        let err = w.commit(CommitInfo::default()).unwrap_err();
        assert!(err.is_disk_full(), "{err}");
    }
    // After a failed write the writer refuses to go on.
    faults.set_remaining(100_000);
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    let mut f = w
        .begin_file(Entry::new(b"y".to_vec(), EntryKind::File))
        .unwrap();
    f.write_all(&random_bytes(3_000_000, 2)).unwrap_err();
    drop(f);
    assert!(matches!(
        w.add(Entry::new(b"d".to_vec(), EntryKind::Directory)),
        Err(PoolError::WriterFailed { .. })
    ));
    assert!(matches!(
        w.commit(CommitInfo::default()),
        Err(PoolError::WriterFailed { .. })
    ));
    faults.disarm();
    assert_eq!(pool.snapshots("h").unwrap().len(), 1);
    verify(&pool.snapshot(&good.id).unwrap(), 1).unwrap();
    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    // Space is back: the pool works and GC reclaims the leftovers.
    try_big_snapshot(&pool, "h", 500_000).unwrap();
    pool.gc(&GcOptions::default()).unwrap();
    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(
        report.is_clean() && report.unreferenced_objects == 0 && report.orphan_packs.is_empty(),
        "{report:#?}"
    );
}

#[test]
fn real_full_tmpfs_leaves_a_consistent_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?); the injected-failure test covers this");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let path = mnt.join("pool");
        let pool = Pool::create(&path, test_options()).unwrap();
        let good = commit_seed(&pool, "h", 1);
        let mut failures = 0;
        for attempt in 0..3 {
            match try_big_snapshot(&pool, "h", 4_000_000) {
                Ok(()) => panic!("attempt {attempt}: 4 MB of random data fit in a 3 MB tmpfs"),
                Err(e) => {
                    assert!(
                        e.is_disk_full() || matches!(e, PoolError::Index { .. }),
                        "{e}"
                    );
                    failures += 1;
                }
            }
        }
        assert_eq!(failures, 3);
        drop(pool);
        // Reopen (a full disk may also have failed an index transaction) and check.
        let pool = Pool::open(&path).unwrap();
        verify(&pool.snapshot(&good.id).unwrap(), 1).unwrap();
        let report = pool.fsck(&FsckOptions::default()).unwrap();
        assert!(report.is_clean(), "{report:#?}");
        pool.gc(&GcOptions::default()).unwrap();
        // After GC freed the leftovers a small snapshot fits again.
        let small = commit_seed(&pool, "h", 2);
        verify(&pool.snapshot(&small.id).unwrap(), 2).unwrap();
        assert!(pool.fsck(&FsckOptions::default()).unwrap().is_clean());
    });
    let _ = Command::new("umount").arg(&mnt).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
