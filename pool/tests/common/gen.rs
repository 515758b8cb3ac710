//! Deterministic snapshot contents for tests and the crash helper: `seed` fixes every file's
//! version, so a snapshot can be rebuilt from the seed in its comment and compared byte for
//! byte. Files change between seeds at different rates so writers use keep() for the rest.

#![allow(dead_code)]

use hoard_pool::{
    ChunkParams, CommitInfo, Entry, EntryKind, Pool, PoolOptions, SnapshotReader, SnapshotWriter,
    Timestamp, Xattr,
};
use std::io::{Read, Write};

/// Small sizes so the suite is quick in debug builds but still chunks, spills and packs.
pub fn test_options() -> PoolOptions {
    PoolOptions {
        zstd_level: 3,
        chunking_threshold: 64 * 1024,
        chunk: ChunkParams {
            min: 8 * 1024,
            avg: 32 * 1024,
            max: 128 * 1024,
        },
        pack_target_size: 256 * 1024,
        spill_threshold: 16 * 1024,
        write_faults: None,
    }
}

pub const FILES: u64 = 40;

fn version(i: u64, seed: u64) -> u64 {
    seed / (1 + i % 4)
}

fn size(i: u64) -> usize {
    if i.is_multiple_of(13) {
        150_000 + i as usize * 1000
    } else {
        ((i * 997) % 20_000) as usize
    }
}

/// Content of file `i` at `version`: half random, half text, so it compresses somewhat.
pub fn content(i: u64, version: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(
        i.wrapping_mul(1_000_003) ^ version.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if rng.bool() {
            for _ in 0..64 {
                out.push(rng.u8(..));
            }
        } else {
            out.extend_from_slice(
                format!("line {} of file {i} version {version}\n", out.len()).as_bytes(),
            );
        }
    }
    out.truncate(len);
    out
}

pub fn file_path(i: u64) -> Vec<u8> {
    if i == 7 {
        return b"d2/\xff\xfenot-utf8".to_vec();
    }
    format!("d{}/sub{}/f{i}", i % 5, i % 3).into_bytes()
}

fn meta(path: Vec<u8>, kind: EntryKind, i: u64) -> Entry {
    Entry {
        path,
        kind,
        mode: 0o600 + (i as u32 % 8),
        uid: 1000 + i as u32,
        gid: 100,
        user: Some(format!("user{i}")),
        group: None,
        mtime: Timestamp {
            seconds: -86_400 + i as i64,
            nanos: (i * 7) as u32,
        },
        size: 0,
        xattrs: if i.is_multiple_of(6) {
            vec![Xattr {
                name: b"user.note".to_vec(),
                value: format!("x{i}").into_bytes(),
            }]
        } else {
            Vec::new()
        },
    }
}

/// Everything a snapshot of `seed` holds, except implicit directories: (entry, content).
pub fn expected(seed: u64) -> Vec<(Entry, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for d in 0..5u64 {
        out.push((
            meta(format!("d{d}").into_bytes(), EntryKind::Directory, d),
            None,
        ));
    }
    for i in 0..FILES {
        let v = version(i, seed);
        let data = content(i, v, size(i));
        let mut e = meta(file_path(i), EntryKind::File, i);
        e.size = data.len() as u64;
        e.mtime.seconds += v as i64;
        out.push((e, Some(data)));
    }
    out.push((
        meta(
            b"d0/link".to_vec(),
            EntryKind::Symlink {
                target: b"../d1/sub1/f1".to_vec(),
            },
            1,
        ),
        None,
    ));
    out.push((
        meta(
            b"d0/hard".to_vec(),
            EntryKind::Hardlink {
                target: file_path(3),
            },
            3,
        ),
        None,
    ));
    out.push((meta(b"d4/fifo".to_vec(), EntryKind::Fifo, 2), None));
    out.push((
        meta(
            b"d4/tty".to_vec(),
            EntryKind::CharDevice(hoard_pool::DeviceNumber {
                major: 4,
                minor: seed as u32 % 64,
            }),
            2,
        ),
        None,
    ));
    out
}

/// Writes the snapshot of `seed` in a shuffled order; files unchanged since `reference_seed`
/// are kept from the reference instead of rewritten.
pub fn write_tree(w: &mut SnapshotWriter, seed: u64, reference_seed: Option<u64>) {
    let mut items = expected(seed);
    fastrand::Rng::with_seed(seed).shuffle(&mut items);
    for (entry, data) in items {
        match data {
            None => w.add(entry).unwrap(),
            Some(data) => {
                let i = file_index(&entry.path);
                let unchanged = reference_seed.is_some_and(|r| version(i, r) == version(i, seed));
                if unchanged {
                    w.keep(entry).unwrap();
                } else {
                    let mut f = w.begin_file(entry).unwrap();
                    for piece in data.chunks(10_000) {
                        f.write_all(piece).unwrap();
                    }
                    f.finish().unwrap();
                }
            }
        }
    }
}

fn file_index(path: &[u8]) -> u64 {
    (0..FILES)
        .find(|&i| file_path(i) == path)
        .expect("a generated file")
}

/// Writes and commits a snapshot of `seed` for `host`, against the host's latest snapshot.
pub fn commit_seed(pool: &Pool, host: &str, seed: u64) -> hoard_pool::SnapshotInfo {
    let latest = pool.latest(host).unwrap();
    let reference = latest.as_ref().map(|i| i.id.clone());
    let reference_seed = latest.as_ref().and_then(|i| i.comment.parse::<u64>().ok());
    let mut w = pool
        .begin_snapshot(
            host,
            hoard_pool::BackupType::Incremental,
            reference.as_ref(),
        )
        .unwrap();
    write_tree(&mut w, seed, reference_seed);
    w.commit(CommitInfo {
        comment: seed.to_string(),
        ..CommitInfo::default()
    })
    .unwrap()
}

/// Checks a snapshot against what `seed` says it holds; returns the first difference.
pub fn verify(reader: &SnapshotReader, seed: u64) -> Result<(), String> {
    let mut seen = std::collections::HashMap::new();
    for item in reader.walk(b"") {
        let e = item.map_err(|e| format!("walk: {e}"))?;
        seen.insert(e.path.clone(), e);
    }
    for (entry, data) in expected(seed) {
        let got = seen
            .get(&entry.path)
            .ok_or_else(|| format!("{} missing", entry.path.escape_ascii()))?;
        if *got != entry {
            return Err(format!(
                "{} differs: {got:?} vs {entry:?}",
                entry.path.escape_ascii()
            ));
        }
        if let Some(data) = data {
            let mut read = Vec::new();
            reader
                .open_file(&entry.path)
                .map_err(|e| e.to_string())?
                .read_to_end(&mut read)
                .map_err(|e| e.to_string())?;
            if read != data {
                return Err(format!("{} content differs", entry.path.escape_ascii()));
            }
        }
    }
    let non_dirs = seen.values().filter(|e| !e.is_dir()).count();
    if non_dirs != FILES as usize + 4 {
        return Err(format!("{non_dirs} non-directory entries walked"));
    }
    Ok(())
}
