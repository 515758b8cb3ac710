//! Reading a committed snapshot: look up a path, list a directory, walk a subtree (parents
//! before children, hardlink targets before their links), and read file content whole,
//! streaming or by byte range. Every object read is verified against its hash.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::sync::Arc;

use super::{SnapshotInfo, SnapshotRecord};
use crate::entry::{Entry, EntryKind, is_within, join, normalize_path, order_key};
use crate::error::{BytePath, PoolError, to_io};
use crate::pool::PoolInner;
use crate::tree::{ChunkRef, Content, Node, Tree};

/// Most hardlink hops followed when opening a file.
const MAX_LINK_HOPS: usize = 32;

/// A committed snapshot opened for reading. Cheap to clone; usable from several threads.
#[derive(Clone)]
pub struct SnapshotReader {
    pool: Arc<PoolInner>,
    record: SnapshotRecord,
}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("id", &self.record.info.id)
            .finish()
    }
}

impl SnapshotReader {
    pub(crate) fn new(pool: Arc<PoolInner>, record: SnapshotRecord) -> SnapshotReader {
        SnapshotReader { pool, record }
    }

    /// The snapshot's metadata.
    pub fn info(&self) -> &SnapshotInfo {
        &self.record.info
    }

    fn not_found(&self, path: &[u8]) -> PoolError {
        PoolError::PathNotFound {
            snapshot: self.record.info.id.clone(),
            path: BytePath(path.to_vec()),
        }
    }

    /// The node at a normalised path.
    pub(crate) fn lookup_node(&self, path: &[u8]) -> Result<Option<Node>, PoolError> {
        let mut node = self.record.root.clone();
        if path.is_empty() {
            return Ok(Some(node));
        }
        for name in path.split(|&b| b == b'/') {
            let Content::Tree(t) = &node.content else {
                return Ok(None);
            };
            let tree = self.pool.load_tree(&t.id)?;
            match tree.find(name) {
                Some(n) => node = n.clone(),
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The entry at `path` (normalised first), or `None`.
    pub fn lookup(&self, path: &[u8]) -> Result<Option<Entry>, PoolError> {
        let path = normalize_path(path)?;
        Ok(self.lookup_node(&path)?.map(|n| n.to_entry(path)))
    }

    /// The entries of the directory at `path`, sorted by name (byte order).
    pub fn list_dir(&self, path: &[u8]) -> Result<Vec<Entry>, PoolError> {
        let path = normalize_path(path)?;
        let node = self
            .lookup_node(&path)?
            .ok_or_else(|| self.not_found(&path))?;
        let Content::Tree(t) = &node.content else {
            return Err(PoolError::NotADirectory {
                snapshot: self.record.info.id.clone(),
                path: BytePath(path),
            });
        };
        let tree = self.pool.load_tree(&t.id)?;
        Ok(tree
            .nodes
            .iter()
            .map(|n| n.to_entry(join(&path, n.name())))
            .collect())
    }

    /// Walks the subtree at `path` depth-first: each directory before its children, children
    /// by name, and a hardlink after its target when both are inside the subtree. A directory
    /// that cannot be read yields an error item and is skipped.
    pub fn walk(&self, path: &[u8]) -> Walk {
        let start = normalize_path(path).map_err(PoolError::from).and_then(|p| {
            match self.lookup_node(&p)? {
                Some(n) => Ok((p, n)),
                None => Err(self.not_found(&p)),
            }
        });
        let base = start.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
        Walk {
            pool: self.pool.clone(),
            base,
            start: Some(start),
            stack: Vec::new(),
            deferred: BTreeMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The chunks of the file at normalised `path`, following hardlinks.
    pub(crate) fn file_chunks(&self, path: &[u8]) -> Result<Vec<ChunkRef>, PoolError> {
        let mut path = path.to_vec();
        for _ in 0..MAX_LINK_HOPS {
            let node = self
                .lookup_node(&path)?
                .ok_or_else(|| self.not_found(&path))?;
            match (&node.entry.kind, node.content) {
                (EntryKind::File, Content::File(chunks)) => return Ok(chunks),
                (EntryKind::Hardlink { target }, _) => path = target.clone(),
                _ => {
                    return Err(PoolError::NotAFile {
                        snapshot: self.record.info.id.clone(),
                        path: BytePath(path),
                    });
                }
            }
        }
        Err(PoolError::BadHardlink {
            snapshot: self.record.info.id.clone(),
            path: BytePath(path),
            detail: format!("more than {MAX_LINK_HOPS} hops"),
        })
    }

    /// Opens the regular file (or hardlink to one) at `path` for streaming.
    pub fn open_file(&self, path: &[u8]) -> Result<FileReader, PoolError> {
        let path = normalize_path(path)?;
        let chunks = self.file_chunks(&path)?;
        Ok(FileReader {
            pool: self.pool.clone(),
            chunks,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        })
    }

    /// Reads the whole file at `path`.
    pub fn read_file(&self, path: &[u8]) -> Result<Vec<u8>, PoolError> {
        let path = normalize_path(path)?;
        let chunks = self.file_chunks(&path)?;
        let mut out = Vec::with_capacity(chunks.iter().map(|c| c.len as usize).sum());
        for c in &chunks {
            out.extend_from_slice(&self.pool.read_object(&c.id)?);
        }
        Ok(out)
    }

    /// Reads up to `len` bytes at `offset` of the file at `path` (fewer at the end of file).
    pub fn read_range(&self, path: &[u8], offset: u64, len: u64) -> Result<Vec<u8>, PoolError> {
        let path = normalize_path(path)?;
        let chunks = self.file_chunks(&path)?;
        let end = offset.saturating_add(len);
        let mut out = Vec::new();
        let mut chunk_start = 0u64;
        for c in &chunks {
            let chunk_end = chunk_start + c.len as u64;
            if chunk_end > offset && chunk_start < end {
                let data = self.pool.read_object(&c.id)?;
                let from = offset.saturating_sub(chunk_start) as usize;
                let to = (end.min(chunk_end) - chunk_start) as usize;
                out.extend_from_slice(&data[from..to]);
            }
            if chunk_end >= end {
                break;
            }
            chunk_start = chunk_end;
        }
        Ok(out)
    }
}

/// Streaming reader of one file's content; a corrupt chunk is an error, never wrong bytes.
pub struct FileReader {
    pool: Arc<PoolInner>,
    chunks: Vec<ChunkRef>,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl FileReader {
    /// The file's length.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len as u64).sum()
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("chunks", &self.chunks.len())
            .field("next", &self.next)
            .finish()
    }
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(c) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.buf = self.pool.read_object(&c.id).map_err(to_io)?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Iterator over a subtree; see [`SnapshotReader::walk`].
pub struct Walk {
    pool: Arc<PoolInner>,
    base: Vec<u8>,
    start: Option<Result<(Vec<u8>, Node), PoolError>>,
    stack: Vec<(Vec<u8>, Arc<Tree>, usize)>,
    /// Hardlinks waiting for their target, by the target's order key.
    deferred: BTreeMap<Vec<u8>, Vec<Entry>>,
    ready: VecDeque<Result<Entry, PoolError>>,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("base", &BytePath(self.base.clone()))
            .finish()
    }
}

impl Walk {
    /// The next entry in plain depth-first order, before hardlink reordering.
    fn next_raw(&mut self) -> Option<Result<Entry, PoolError>> {
        if let Some(start) = self.start.take() {
            return Some(start.and_then(|(path, node)| self.enter(path, &node)));
        }
        loop {
            let (dir, tree, idx) = self.stack.last_mut()?;
            if *idx >= tree.nodes.len() {
                self.stack.pop();
                continue;
            }
            let node = tree.nodes[*idx].clone();
            *idx += 1;
            let path = join(dir, node.name());
            return Some(self.enter(path, &node));
        }
    }

    /// Emits a node; pushes its directory so its children come next.
    fn enter(&mut self, path: Vec<u8>, node: &Node) -> Result<Entry, PoolError> {
        if let Content::Tree(t) = &node.content {
            let tree = self.pool.load_tree(&t.id)?;
            self.stack.push((path.clone(), tree, 0));
        }
        Ok(node.to_entry(path))
    }

    fn release(&mut self, path: &[u8]) {
        if self.deferred.is_empty() {
            return;
        }
        let mut queue = vec![order_key(path)];
        while let Some(key) = queue.pop() {
            if let Some(links) = self.deferred.remove(&key) {
                for link in links {
                    queue.push(order_key(&link.path));
                    self.ready.push_back(Ok(link));
                }
            }
        }
    }
}

impl Iterator for Walk {
    type Item = Result<Entry, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            match self.next_raw() {
                Some(Ok(entry)) => {
                    if let EntryKind::Hardlink { target } = &entry.kind
                        && is_within(target, &self.base)
                        && order_key(target) > order_key(&entry.path)
                    {
                        self.deferred
                            .entry(order_key(target))
                            .or_default()
                            .push(entry);
                        continue;
                    }
                    let path = entry.path.clone();
                    self.ready.push_back(Ok(entry));
                    self.release(&path);
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    // Links whose target never appeared.
                    let rest = std::mem::take(&mut self.deferred);
                    for (_, links) in rest {
                        self.ready.extend(links.into_iter().map(Ok));
                    }
                    return self.ready.pop_front();
                }
            }
        }
    }
}
