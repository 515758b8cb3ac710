//! Writing one snapshot: entries and streamed file content in, chunked/hashed/compressed into
//! the writer's packs, "unchanged" hints resolved against the reference snapshot, and an
//! atomic commit at the end. Dropping a writer without commit abandons it (GC reclaims).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Arc;

use super::builder::{TreeBuilder, TreeStore};
use super::{
    BackupType, CommitInfo, SnapshotId, SnapshotInfo, SnapshotReader, SnapshotRecord, catalog,
};
use crate::entry::{Entry, EntryKind, Timestamp, normalize_path};
use crate::error::{BytePath, PoolError, to_io};
use crate::inflight::lock;
use crate::object::{Chunker, ObjectId, ObjectKind};
use crate::packer::Packer;
use crate::pool::PoolInner;
use crate::tree::{ChunkRef, Content, Node, Tree};

/// A running backup's snapshot. One per host at a time; several (different hosts) may run in
/// parallel threads.
pub struct SnapshotWriter {
    pool: Arc<PoolInner>,
    host: String,
    backup_type: BackupType,
    started: Timestamp,
    reference: Option<SnapshotReader>,
    packer: Packer,
    builder: TreeBuilder,
    failed: bool,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("host", &self.host)
            .finish()
    }
}

/// What storing one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The file's normalised path.
    pub path: Vec<u8>,
    /// Bytes actually received (recorded as the entry's size).
    pub size: u64,
    /// Chunks the content was cut into (1 for a small file, 0 for an empty one).
    pub chunks: usize,
    /// Plain bytes that were new to the pool.
    pub new_bytes: u64,
}

impl SnapshotWriter {
    pub(crate) fn begin(
        pool: Arc<PoolInner>,
        host: &str,
        backup_type: BackupType,
        reference: Option<&SnapshotId>,
    ) -> Result<SnapshotWriter, PoolError> {
        catalog::check_host(host)?;
        let claims = pool.inflight.register();
        let reference = match reference {
            None => None,
            Some(id) => {
                // Read and claim the reference under the GC lock so a sweep cannot slip between.
                let _shared = pool.inflight.shared();
                let record = catalog::load(&pool.index, id)?;
                if let Content::Tree(t) = &record.root.content {
                    lock(&claims.claims().roots).push(t.id);
                }
                Some(SnapshotReader::new(pool.clone(), record))
            }
        };
        let packer = Packer::new(pool.clone(), claims)?;
        let builder = TreeBuilder::new(&pool.tmp_dir, pool.options.spill_threshold);
        tracing::info!(host, ?backup_type, reference = ?reference.as_ref().map(|r| r.info().id.number), "snapshot started");
        Ok(SnapshotWriter {
            pool,
            host: host.to_string(),
            backup_type,
            started: Timestamp::now(),
            reference,
            packer,
            builder,
            failed: false,
        })
    }

    fn check(&self) -> Result<(), PoolError> {
        if self.failed {
            return Err(PoolError::WriterFailed {
                host: self.host.clone(),
            });
        }
        Ok(())
    }

    /// Runs `f`, marking the writer failed if it returns a storage error.
    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, PoolError>,
    ) -> Result<T, PoolError> {
        self.check()?;
        let result = f(self);
        if let Err(e) = &result
            && is_fatal(e)
        {
            self.failed = true;
        }
        result
    }

    /// The host being backed up.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// When the writer started (used for implicit directories).
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// Records the backup as started at `started` instead of when the writer began: for
    /// backups imported from elsewhere (another server's history), whose age retention and
    /// scheduling must see.
    pub fn set_started(&mut self, started: Timestamp) {
        self.started = started;
    }

    /// Adds an entry without content: a directory, symlink, device, fifo, socket, hardlink,
    /// or an empty file. Any order; the same path again replaces the earlier one.
    pub fn add(&mut self, entry: Entry) -> Result<(), PoolError> {
        self.guard(|w| {
            let (path, mut entry) = normalize_entry(entry)?;
            let content = if entry.kind == EntryKind::File {
                entry.size = 0;
                Content::File(Vec::new())
            } else {
                Content::None
            };
            w.builder.add(&path, Node { entry, content })
        })
    }

    /// Starts a regular file whose content is then written to the returned [`FileWriter`].
    pub fn begin_file(&mut self, entry: Entry) -> Result<FileWriter<'_>, PoolError> {
        self.check()?;
        let (path, mut entry) = normalize_entry(entry)?;
        entry.kind = EntryKind::File;
        entry.path = path;
        Ok(FileWriter {
            writer: self,
            entry,
            small: Vec::new(),
            chunker: None,
            chunks: Vec::new(),
            size: 0,
            new_bytes: 0,
        })
    }

    /// Adds `entry` with the metadata given but the content of the same path in the reference
    /// snapshot (for a file; other kinds need only exist there). Errors if the reference lacks
    /// it or has no file there.
    pub fn keep(&mut self, entry: Entry) -> Result<(), PoolError> {
        self.guard(|w| {
            let (path, mut entry) = normalize_entry(entry)?;
            let reference = w
                .reference
                .as_ref()
                .ok_or_else(|| PoolError::NotInReference {
                    path: BytePath(path.clone()),
                    detail: "the writer has no reference snapshot".into(),
                })?;
            let Some(node) = reference.lookup_node(&path)? else {
                return Err(PoolError::NotInReference {
                    path: BytePath(path.clone()),
                    detail: format!("not in reference snapshot {}", reference.info().id),
                });
            };
            let content = if entry.kind == EntryKind::File {
                let chunks = match node.entry.kind {
                    EntryKind::File | EntryKind::Hardlink { .. } => reference
                        .file_chunks(&path)
                        .map_err(|e| PoolError::NotInReference {
                            path: BytePath(path.clone()),
                            detail: e.to_string(),
                        })?,
                    _ => {
                        return Err(PoolError::NotInReference {
                            path: BytePath(path.clone()),
                            detail: format!(
                                "not a regular file in reference snapshot {}",
                                reference.info().id
                            ),
                        });
                    }
                };
                entry.size = chunks.iter().map(|c| c.len as u64).sum();
                Content::File(chunks)
            } else {
                Content::None
            };
            w.builder.add(&path, Node { entry, content })
        })
    }

    /// Adds the whole subtree at `path` (or the single entry, if not a directory) exactly as it
    /// is in the reference snapshot. Entries added below it later replace inherited ones.
    pub fn keep_tree(&mut self, path: &[u8]) -> Result<(), PoolError> {
        self.guard(|w| {
            let path = normalize_path(path)?;
            let reference = w
                .reference
                .as_ref()
                .ok_or_else(|| PoolError::NotInReference {
                    path: BytePath(path.clone()),
                    detail: "the writer has no reference snapshot".into(),
                })?;
            let Some(node) = reference.lookup_node(&path)? else {
                return Err(PoolError::NotInReference {
                    path: BytePath(path.clone()),
                    detail: format!("not in reference snapshot {}", reference.info().id),
                });
            };
            w.builder.add(&path, node)
        })
    }

    /// The reference snapshot, if one was given.
    pub fn reference(&self) -> Option<&SnapshotReader> {
        self.reference.as_ref()
    }

    /// Builds the trees, makes everything durable and commits the snapshot atomically. Its
    /// number is one more than the highest this host ever had (0 for the first).
    pub fn commit(mut self, meta: CommitInfo) -> Result<SnapshotInfo, PoolError> {
        self.check()?;
        let builder = std::mem::replace(&mut self.builder, TreeBuilder::new(&self.pool.tmp_dir, 0));
        let started = self.started;
        let root = {
            let mut store = WriterTrees { writer: &mut self };
            builder.finish(&mut store, started)?
        };
        self.packer.flush()?;
        let Content::Tree(tree) = root.content else {
            return Err(PoolError::index(
                "committing snapshot",
                "root is not a directory",
            ));
        };
        let counters = self.packer.counters;
        let reference = self.reference.as_ref().map(|r| r.info().id.number);
        let inflight = self.pool.inflight.clone();
        let _shared = inflight.shared();
        let record = catalog::commit(&self.pool.index, &self.host, |number| SnapshotRecord {
            info: SnapshotInfo {
                id: SnapshotId::new(self.host.clone(), number),
                backup_type: self.backup_type,
                started,
                ended: meta.ended.unwrap_or_else(Timestamp::now),
                file_count: tree.files,
                entry_count: tree.entries,
                bytes: tree.bytes,
                new_bytes: counters.new_data_bytes,
                new_stored_bytes: counters.new_stored_bytes,
                errors: meta.errors,
                keep: meta.keep,
                comment: meta.comment.clone(),
                partial: meta.partial,
                reference,
            },
            root: root.clone(),
        })?;
        // Claims are withdrawn (self dropped) while the lock is still held.
        drop(self);
        tracing::info!(snapshot = %record.info.id, files = record.info.file_count, bytes = record.info.bytes, new_bytes = record.info.new_bytes, "snapshot committed");
        Ok(record.info)
    }
}

/// Errors after which the writer's packs may be inconsistent: it must not go on.
fn is_fatal(e: &PoolError) -> bool {
    !matches!(
        e,
        PoolError::InvalidPath(_)
            | PoolError::NotInReference { .. }
            | PoolError::PathNotFound { .. }
    )
}

fn normalize_entry(mut entry: Entry) -> Result<(Vec<u8>, Entry), PoolError> {
    let path = normalize_path(&entry.path)?;
    if let EntryKind::Hardlink { target } = &entry.kind {
        entry.kind = EntryKind::Hardlink {
            target: normalize_path(target)?,
        };
    }
    entry.path = Vec::new();
    Ok((path, entry))
}

struct WriterTrees<'a> {
    writer: &'a mut SnapshotWriter,
}

impl TreeStore for WriterTrees<'_> {
    fn store_tree(&mut self, bytes: &[u8]) -> Result<ObjectId, PoolError> {
        let result = self
            .writer
            .packer
            .store(ObjectKind::Tree, Cow::Borrowed(bytes));
        if result.is_err() {
            self.writer.failed = true;
        }
        Ok(result?.0)
    }

    fn load_tree(&self, id: &ObjectId) -> Result<Arc<Tree>, PoolError> {
        self.writer.pool.load_tree(id)
    }
}

/// Streams one regular file into the pool: content is chunked, hashed, deduplicated and
/// compressed as it arrives, in constant memory. Call [`FileWriter::finish`] to record it;
/// dropping it instead leaves the file out of the snapshot.
pub struct FileWriter<'w> {
    writer: &'w mut SnapshotWriter,
    entry: Entry,
    small: Vec<u8>,
    chunker: Option<Chunker>,
    chunks: Vec<ChunkRef>,
    size: u64,
    new_bytes: u64,
}

impl std::fmt::Debug for FileWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("path", &BytePath(self.entry.path.clone()))
            .field("size", &self.size)
            .finish()
    }
}

fn store_chunk(
    packer: &mut Packer,
    chunks: &mut Vec<ChunkRef>,
    new_bytes: &mut u64,
    data: Cow<'_, [u8]>,
) -> Result<(), PoolError> {
    let len = data.len();
    let (id, new) = packer.store(ObjectKind::Data, data)?;
    if new {
        *new_bytes += len as u64;
    }
    chunks.push(ChunkRef {
        id,
        len: len as u32,
    });
    Ok(())
}

/// What a chunker cuts goes to the pool: each chunk is borrowed from the chunker's buffer,
/// so it is copied if it is new.
fn store_cut_chunks<'a>(
    packer: &'a mut Packer,
    chunks: &'a mut Vec<ChunkRef>,
    new_bytes: &'a mut u64,
) -> impl FnMut(&[u8]) -> Result<(), PoolError> + 'a {
    move |data| store_chunk(packer, chunks, new_bytes, Cow::Borrowed(data))
}

impl FileWriter<'_> {
    /// Appends content the caller hands over. A file that arrives in one piece no larger than
    /// the chunking threshold becomes its object without being copied.
    pub fn write_owned(&mut self, buf: Vec<u8>) -> io::Result<()> {
        let result = self.push_owned(buf);
        self.io_result(result)
    }

    fn push_owned(&mut self, buf: Vec<u8>) -> Result<(), PoolError> {
        if self.chunker.is_some() || !self.small.is_empty() {
            return self.push(&buf);
        }
        self.writer.check()?;
        self.size += buf.len() as u64;
        self.small = buf;
        self.chunk_if_large()
    }

    fn push(&mut self, buf: &[u8]) -> Result<(), PoolError> {
        self.writer.check()?;
        self.size += buf.len() as u64;
        match &mut self.chunker {
            Some(c) => c.push(
                buf,
                &mut store_cut_chunks(
                    &mut self.writer.packer,
                    &mut self.chunks,
                    &mut self.new_bytes,
                ),
            ),
            None => {
                self.small.extend_from_slice(buf);
                self.chunk_if_large()
            }
        }
    }

    /// Once the unchunked content passes the threshold, hands it to a chunker.
    fn chunk_if_large(&mut self) -> Result<(), PoolError> {
        if self.small.len() as u64 <= self.writer.pool.options.chunking_threshold {
            return Ok(());
        }
        let chunker = Chunker::starting_with(
            self.writer.pool.options.chunk,
            std::mem::take(&mut self.small),
            &mut store_cut_chunks(
                &mut self.writer.packer,
                &mut self.chunks,
                &mut self.new_bytes,
            ),
        )?;
        self.chunker = Some(chunker);
        Ok(())
    }

    /// A pool result as an I/O one, marking the writer failed when the error is fatal.
    fn io_result(&mut self, result: Result<(), PoolError>) -> io::Result<()> {
        result.map_err(|e| {
            if is_fatal(&e) {
                self.writer.failed = true;
            }
            to_io(e)
        })
    }

    /// Stores what remains and records the entry with the number of bytes actually written.
    pub fn finish(mut self) -> Result<FileSummary, PoolError> {
        self.writer.check()?;
        let result = self.finish_inner();
        if let Err(e) = &result
            && is_fatal(e)
        {
            self.writer.failed = true;
        }
        result
    }

    fn finish_inner(&mut self) -> Result<FileSummary, PoolError> {
        let FileWriter {
            writer,
            small,
            chunker,
            chunks,
            new_bytes,
            ..
        } = self;
        let packer = &mut writer.packer;
        match chunker.take() {
            Some(c) => c.finish(&mut store_cut_chunks(packer, chunks, new_bytes))?,
            None if !small.is_empty() => {
                let data = std::mem::take(small);
                store_chunk(packer, chunks, new_bytes, Cow::Owned(data))?;
            }
            None => {}
        }
        let path = std::mem::take(&mut self.entry.path);
        let mut entry = self.entry.clone();
        entry.size = self.size;
        let summary = FileSummary {
            path: path.clone(),
            size: self.size,
            chunks: self.chunks.len(),
            new_bytes: self.new_bytes,
        };
        let content = Content::File(std::mem::take(&mut self.chunks));
        self.writer.builder.add(&path, Node { entry, content })?;
        Ok(summary)
    }
}

impl Write for FileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.push(buf);
        self.io_result(result).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
