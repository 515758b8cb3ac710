//! Helpers shared by the pool's integration tests.

#![allow(dead_code)]

#[path = "gen.rs"]
pub mod generator;

use hoard_pool::{Entry, EntryKind, Pool, SnapshotWriter};
use std::io::Write;

/// A fresh pool with the small test options.
pub fn new_pool() -> (tempfile::TempDir, Pool) {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::create(dir.path().join("pool"), generator::test_options()).unwrap();
    (dir, pool)
}

/// Writes a regular file with `data`.
pub fn put(w: &mut SnapshotWriter, path: &[u8], data: &[u8]) {
    let mut f = w
        .begin_file(Entry::new(path.to_vec(), EntryKind::File))
        .unwrap();
    f.write_all(data).unwrap();
    f.finish().unwrap();
}

/// Pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}
