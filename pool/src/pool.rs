//! The pool handle: creating and opening a pool directory, its options, and the shared state
//! every writer, reader, GC and fsck works through (index, claims, caches, object reads).
//!
//! Layout of a pool directory:
//! `pool.json` (format and options), `index.redb` (index and catalog), `packs/XX/*.pack`,
//! `tmp/` (spill files of running writers; emptied on open).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::PoolError;
use crate::fault::WriteFaults;
use crate::fsck::{FsckOptions, FsckReport};
use crate::gc::{GcOptions, GcReport};
use crate::index::Index;
use crate::inflight::{Inflight, lock};
use crate::object::{ChunkParams, ObjectId};
use crate::pack::{PackId, read_object, sync_dir};
use crate::snapshot::{
    BackupType, SnapshotId, SnapshotInfo, SnapshotReader, SnapshotWriter, catalog,
};
use crate::stats::PoolStats;
use crate::tree::{Tree, TreeCache};

const FORMAT: &str = "hoard-pool";
const FORMAT_VERSION: u32 = 1;

/// Tunables of a pool, stored in `pool.json` at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolOptions {
    /// zstd level for new objects (default 3).
    pub zstd_level: i32,
    /// Files larger than this are cut by content-defined chunking (default 1 MiB); smaller
    /// files are one object.
    pub chunking_threshold: u64,
    /// Chunk size limits (default 256 KiB / 1 MiB / 4 MiB).
    pub chunk: ChunkParams,
    /// A pack is closed and published once it reaches this size (default 64 MiB).
    pub pack_target_size: u64,
    /// Bytes of entry metadata a writer buffers before spilling a sorted run to `tmp/`
    /// (default 32 MiB).
    pub spill_threshold: u64,
    /// Injected write failures for tests (never stored).
    #[serde(skip)]
    pub write_faults: Option<WriteFaults>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            zstd_level: 3,
            chunking_threshold: 1024 * 1024,
            chunk: ChunkParams::DEFAULT,
            pack_target_size: 64 * 1024 * 1024,
            spill_threshold: 32 * 1024 * 1024,
            write_faults: None,
        }
    }
}

impl PoolOptions {
    fn validate(&self) -> Result<(), PoolError> {
        self.chunk.validate().map_err(PoolError::InvalidOptions)?;
        if !(zstd::compression_level_range()).contains(&self.zstd_level) {
            return Err(PoolError::InvalidOptions(format!(
                "zstd level {} out of range",
                self.zstd_level
            )));
        }
        if self.pack_target_size < 4096 {
            return Err(PoolError::InvalidOptions(
                "pack_target_size below 4 KiB".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct PoolFile {
    format: String,
    version: u32,
    options: PoolOptions,
}

/// State shared by every handle, writer and reader of one open pool.
pub(crate) struct PoolInner {
    pub dir: PathBuf,
    pub packs_dir: PathBuf,
    pub tmp_dir: PathBuf,
    pub options: PoolOptions,
    pub index: Index,
    pub inflight: Arc<Inflight>,
    pub gc_running: Mutex<()>,
    trees: Mutex<TreeCache>,
    files: Mutex<HashMap<PackId, Arc<File>>>,
}

impl PoolInner {
    /// An open handle on a pack file (cached).
    pub(crate) fn pack_file(&self, pack: PackId) -> std::io::Result<Arc<File>> {
        if let Some(f) = lock(&self.files).get(&pack) {
            return Ok(f.clone());
        }
        let file = Arc::new(File::open(pack.path(&self.packs_dir))?);
        let mut files = lock(&self.files);
        if files.len() >= 256 {
            files.clear();
        }
        files.insert(pack, file.clone());
        Ok(file)
    }

    /// Drops a cached handle (the pack is being deleted).
    pub(crate) fn forget_pack_file(&self, pack: PackId) {
        lock(&self.files).remove(&pack);
    }

    /// Reads and verifies one object.
    pub(crate) fn read_object(&self, id: &ObjectId) -> Result<Vec<u8>, PoolError> {
        // A repack may move the object between lookup and read: look up again once.
        for attempt in 0..2 {
            let loc = self
                .index
                .lookup(id)?
                .ok_or(PoolError::MissingObject { id: *id })?;
            match self.pack_file(loc.pack) {
                Ok(file) => return read_object(&file, id, &loc),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => continue,
                Err(e) => {
                    return Err(PoolError::CorruptObject {
                        id: *id,
                        pack: loc.pack,
                        offset: loc.offset,
                        detail: format!("pack file cannot be opened: {e}"),
                    });
                }
            }
        }
        Err(PoolError::MissingObject { id: *id })
    }

    /// Reads and decodes a directory object (cached).
    pub(crate) fn load_tree(&self, id: &ObjectId) -> Result<Arc<Tree>, PoolError> {
        if let Some(t) = lock(&self.trees).get(id) {
            return Ok(t);
        }
        let bytes = self.read_object(id)?;
        let tree = Arc::new(Tree::decode(id, &bytes)?);
        lock(&self.trees).insert(*id, tree.clone());
        Ok(tree)
    }
}

/// An open pool. Cheap to clone and share between threads; all methods are blocking.
///
/// Only one process may have a pool open at a time ([`PoolError::Locked`] otherwise); within
/// that process any number of writers (one per host), readers, one GC and fsck may run at once.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Pool {
    /// Creates a new pool in `dir` (created if missing; must not already hold a pool).
    pub fn create(dir: impl AsRef<Path>, options: PoolOptions) -> Result<Pool, PoolError> {
        let dir = dir.as_ref();
        options.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| PoolError::io("creating pool directory", dir, e))?;
        let file = dir.join("pool.json");
        if file.exists() {
            return Err(PoolError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        for sub in ["packs", "tmp"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p)
                .map_err(|e| PoolError::io("creating pool directory", &p, e))?;
        }
        let body = PoolFile {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            options: options.clone(),
        };
        let json = serde_json::to_vec_pretty(&body)
            .map_err(|e| PoolError::InvalidOptions(e.to_string()))?;
        let tmp = dir.join("pool.json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &file)
        };
        write().map_err(|e| PoolError::io("writing", &file, e))?;
        sync_dir(dir)?;
        tracing::info!(dir = %dir.display(), "pool created");
        Pool::open_inner(dir, options)
    }

    /// Opens an existing pool with the options it was created with.
    pub fn open(dir: impl AsRef<Path>) -> Result<Pool, PoolError> {
        let dir = dir.as_ref();
        let options = Pool::stored_options(dir)?;
        Pool::open_inner(dir, options)
    }

    /// Opens an existing pool with other options (e.g. another zstd level, or injected write
    /// failures). Chunking parameters other than those it was created with only cost dedup.
    pub fn open_with(dir: impl AsRef<Path>, options: PoolOptions) -> Result<Pool, PoolError> {
        let dir = dir.as_ref();
        Pool::stored_options(dir)?;
        options.validate()?;
        Pool::open_inner(dir, options)
    }

    /// Opens the pool in `dir`, creating it with `options` if there is none.
    pub fn open_or_create(dir: impl AsRef<Path>, options: PoolOptions) -> Result<Pool, PoolError> {
        let dir = dir.as_ref();
        if dir.join("pool.json").exists() {
            Pool::open(dir)
        } else {
            Pool::create(dir, options)
        }
    }

    fn stored_options(dir: &Path) -> Result<PoolOptions, PoolError> {
        let file = dir.join("pool.json");
        let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PoolError::NotAPool {
                path: dir.to_path_buf(),
                detail: "no pool.json".into(),
            },
            _ => PoolError::io("reading", &file, e),
        })?;
        let parsed: PoolFile = serde_json::from_slice(&bytes).map_err(|e| PoolError::NotAPool {
            path: dir.to_path_buf(),
            detail: format!("pool.json: {e}"),
        })?;
        if parsed.format != FORMAT || parsed.version != FORMAT_VERSION {
            return Err(PoolError::NotAPool {
                path: dir.to_path_buf(),
                detail: format!("format {} version {}", parsed.format, parsed.version),
            });
        }
        Ok(parsed.options)
    }

    fn open_inner(dir: &Path, options: PoolOptions) -> Result<Pool, PoolError> {
        let index = Index::open(&dir.join("index.redb"), dir)?;
        let tmp_dir = dir.join("tmp");
        // Spill files of writers that died with an earlier process.
        if let Ok(rd) = std::fs::read_dir(&tmp_dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        std::fs::create_dir_all(&tmp_dir).map_err(|e| PoolError::io("creating", &tmp_dir, e))?;
        Ok(Pool {
            inner: Arc::new(PoolInner {
                dir: dir.to_path_buf(),
                packs_dir: dir.join("packs"),
                tmp_dir,
                options,
                index,
                inflight: Arc::new(Inflight::default()),
                gc_running: Mutex::new(()),
                trees: Mutex::new(TreeCache::default()),
                files: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The pool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options in force.
    pub fn options(&self) -> &PoolOptions {
        &self.inner.options
    }

    /// Starts a snapshot of `host`. With a `reference` (usually the host's previous snapshot)
    /// the writer can keep unchanged files and subtrees from it.
    pub fn begin_snapshot(
        &self,
        host: &str,
        backup_type: BackupType,
        reference: Option<&SnapshotId>,
    ) -> Result<SnapshotWriter, PoolError> {
        SnapshotWriter::begin(self.inner.clone(), host, backup_type, reference)
    }

    /// The snapshots of `host`, sorted by number (empty for an unknown host).
    pub fn snapshots(&self, host: &str) -> Result<Vec<SnapshotInfo>, PoolError> {
        Ok(catalog::list(&self.inner.index, Some(host))?
            .into_iter()
            .map(|r| r.info)
            .collect())
    }

    /// Every host with at least one snapshot, sorted.
    pub fn hosts(&self) -> Result<Vec<String>, PoolError> {
        catalog::hosts(&self.inner.index)
    }

    /// Opens a committed snapshot for reading.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<SnapshotReader, PoolError> {
        let record = catalog::load(&self.inner.index, id)?;
        Ok(SnapshotReader::new(self.inner.clone(), record))
    }

    /// The latest snapshot of `host`, if any.
    pub fn latest(&self, host: &str) -> Result<Option<SnapshotInfo>, PoolError> {
        Ok(self.snapshots(host)?.pop())
    }

    /// Removes a snapshot from the catalog; its objects are reclaimed by the next GC.
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<(), PoolError> {
        catalog::delete(&self.inner.index, id)
    }

    /// Sets or clears a snapshot's keep flag.
    pub fn set_keep(&self, id: &SnapshotId, keep: bool) -> Result<(), PoolError> {
        catalog::update(&self.inner.index, id, |info| info.keep = keep)
    }

    /// Sets a snapshot's comment.
    pub fn set_comment(&self, id: &SnapshotId, comment: &str) -> Result<(), PoolError> {
        catalog::update(&self.inner.index, id, |info| {
            info.comment = comment.to_string()
        })
    }

    /// Mark-and-sweep garbage collection with repacking; safe while backups run.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport, PoolError> {
        crate::gc::run(&self.inner, opts)
    }

    /// Re-hashes objects and checks every snapshot's references.
    pub fn fsck(&self, opts: &FsckOptions) -> Result<FsckReport, PoolError> {
        crate::fsck::run(&self.inner, opts)
    }

    /// Sizes, counts and ratios, per host and in total.
    pub fn stats(&self) -> Result<PoolStats, PoolError> {
        crate::stats::run(&self.inner)
    }
}
