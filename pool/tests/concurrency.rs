//! Concurrency: two writers (different hosts, sharing most content) and a GC running at once,
//! with snapshots being deleted meanwhile. No object a committed snapshot needs may be lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::generator::{commit_seed, test_options, verify};
use hoard_pool::{FsckOptions, GcOptions, Pool};

#[test]
fn two_writers_and_gc_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::create(dir.path().join("pool"), test_options()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ["left", "right"]
        .into_iter()
        .enumerate()
        .map(|(n, host)| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for k in 0..10u64 {
                    // Both hosts walk through overlapping seeds: much shared content.
                    let seed = 1 + k + n as u64;
                    let info = commit_seed(&pool, host, seed);
                    verify(&pool.snapshot(&info.id).unwrap(), seed).unwrap();
                    // Delete older snapshots so GC has something to sweep and repack.
                    let snaps = pool.snapshots(host).unwrap();
                    if snaps.len() > 2 {
                        pool.delete_snapshot(&snaps[0].id).unwrap();
                    }
                }
            })
        })
        .collect();
    let gc = {
        let pool = pool.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut runs, mut swept) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                let opts = GcOptions {
                    repack_threshold: 0.9,
                    dry_run: false,
                };
                swept += pool.gc(&opts).unwrap().swept_objects;
                runs += 1;
            }
            (runs, swept)
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (runs, swept) = gc.join().unwrap();
    assert!(runs >= 2, "gc ran {runs} times");
    assert!(swept > 0, "gc never swept anything in {runs} runs");

    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    for host in ["left", "right"] {
        for info in pool.snapshots(host).unwrap() {
            verify(
                &pool.snapshot(&info.id).unwrap(),
                info.comment.parse().unwrap(),
            )
            .unwrap();
        }
    }
    let final_gc = pool.gc(&GcOptions::default()).unwrap();
    let report = pool.fsck(&FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{final_gc:?} {report:#?}");
    assert_eq!(report.unreferenced_objects, 0);
}
