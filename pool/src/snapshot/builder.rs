//! Turning entries that arrive in any order into directory objects, bottom-up, in bounded
//! memory: entries are buffered as records keyed by their depth-first order key, sorted runs
//! are spilled to `tmp/` when the buffer is full, and at commit the runs are merged (the last
//! record of a path wins) and folded into trees with a stack of open directories.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, EntryKind, Timestamp, is_within, join, name_of, parent_of, path_of_key};
use crate::error::PoolError;
use crate::object::ObjectId;
use crate::tree::{Content, Node, Tree, TreeRef};

/// What the builder needs from its writer: store a directory object, load one (to open up a
/// kept subtree that receives new entries).
pub(crate) trait TreeStore {
    /// Stores an encoded directory object.
    fn store_tree(&mut self, bytes: &[u8]) -> Result<ObjectId, PoolError>;
    /// Loads a directory object.
    fn load_tree(&self, id: &ObjectId) -> Result<Arc<Tree>, PoolError>;
}

/// One buffered entry: order key, arrival number, node (with an empty name; the key has it).
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: Vec<u8>,
    seq: u64,
    node: Node,
}

impl Record {
    fn estimated_size(&self) -> usize {
        let content = match &self.node.content {
            Content::File(c) => c.len() * 40,
            _ => 48,
        };
        let xattrs: usize = self
            .node
            .entry
            .xattrs
            .iter()
            .map(|x| x.name.len() + x.value.len() + 48)
            .sum();
        160 + self.key.len() * 2 + content + xattrs
    }
}

/// Collects entries and builds the snapshot's tree at the end.
pub(crate) struct TreeBuilder {
    tmp_dir: PathBuf,
    spill_threshold: usize,
    buffer: Vec<Record>,
    buffered: usize,
    runs: Vec<File>,
    seq: u64,
}

impl TreeBuilder {
    pub(crate) fn new(tmp_dir: &Path, spill_threshold: u64) -> TreeBuilder {
        TreeBuilder {
            tmp_dir: tmp_dir.to_path_buf(),
            spill_threshold: spill_threshold.max(1024) as usize,
            buffer: Vec::new(),
            buffered: 0,
            runs: Vec::new(),
            seq: 0,
        }
    }

    /// Adds an entry at normalised `path` (the node's own path field is ignored).
    pub(crate) fn add(&mut self, path: &[u8], mut node: Node) -> Result<(), PoolError> {
        node.entry.path = Vec::new();
        let record = Record {
            key: crate::entry::order_key(path),
            seq: self.seq,
            node,
        };
        self.seq += 1;
        self.buffered += record.estimated_size();
        self.buffer.push(record);
        if self.buffered >= self.spill_threshold {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), PoolError> {
        let op = "spilling entries";
        self.buffer
            .sort_unstable_by(|a, b| (&a.key, a.seq).cmp(&(&b.key, b.seq)));
        let file = tempfile::tempfile_in(&self.tmp_dir)
            .map_err(|e| PoolError::io(op, &self.tmp_dir, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut scratch = Vec::new();
        for record in self.buffer.drain(..) {
            scratch.clear();
            scratch = postcard::to_extend(&record, scratch).map_err(|e| PoolError::index(op, e))?;
            out.write_all(&(scratch.len() as u32).to_le_bytes())
                .and_then(|_| out.write_all(&scratch))
                .map_err(|e| PoolError::io(op, &self.tmp_dir, e))?;
        }
        let mut file = out
            .into_inner()
            .map_err(|e| PoolError::io(op, &self.tmp_dir, e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| PoolError::io(op, &self.tmp_dir, e))?;
        self.runs.push(file);
        self.buffered = 0;
        self.buffer = Vec::new();
        tracing::debug!(runs = self.runs.len(), "spilled a sorted run of entries");
        Ok(())
    }

    /// Merges everything and builds the trees; returns the root node (path `""`).
    pub(crate) fn finish(
        mut self,
        store: &mut dyn TreeStore,
        started: Timestamp,
    ) -> Result<Node, PoolError> {
        self.buffer
            .sort_unstable_by(|a, b| (&a.key, a.seq).cmp(&(&b.key, b.seq)));
        let mut sources: Vec<Source> = Vec::new();
        for file in self.runs.drain(..) {
            sources.push(Source::Run(
                BufReader::with_capacity(256 * 1024, file),
                self.tmp_dir.clone(),
            ));
        }
        sources.push(Source::Memory(std::mem::take(&mut self.buffer).into_iter()));
        let merged = Merge::new(sources)?;
        fold(
            LastWins {
                inner: merged,
                peeked: None,
            },
            store,
            started,
        )
    }
}

/// A sorted stream of records: the in-memory buffer or a spilled run.
enum Source {
    Memory(std::vec::IntoIter<Record>),
    Run(BufReader<File>, PathBuf),
}

impl Source {
    fn next(&mut self) -> Result<Option<Record>, PoolError> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::Run(r, dir) => {
                let op = "reading spilled entries";
                let mut len = [0u8; 4];
                match r.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(PoolError::io(op, dir.as_path(), e)),
                }
                let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut buf)
                    .map_err(|e| PoolError::io(op, dir.as_path(), e))?;
                postcard::from_bytes(&buf)
                    .map(Some)
                    .map_err(|e| PoolError::index(op, e))
            }
        }
    }
}

struct HeapItem {
    record: Record,
    source: usize,
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the smallest (key, seq) first.
        (&other.record.key, other.record.seq).cmp(&(&self.record.key, self.record.seq))
    }
}

/// K-way merge of sorted sources by (key, seq).
struct Merge {
    sources: Vec<Source>,
    heap: BinaryHeap<HeapItem>,
}

impl Merge {
    fn new(mut sources: Vec<Source>) -> Result<Merge, PoolError> {
        let mut heap = BinaryHeap::new();
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(record) = s.next()? {
                heap.push(HeapItem { record, source: i });
            }
        }
        Ok(Merge { sources, heap })
    }

    fn next(&mut self) -> Result<Option<Record>, PoolError> {
        let Some(item) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(record) = self.sources[item.source].next()? {
            self.heap.push(HeapItem {
                record,
                source: item.source,
            });
        }
        Ok(Some(item.record))
    }
}

/// Keeps only the last record (highest seq) of each key.
struct LastWins {
    inner: Merge,
    peeked: Option<Record>,
}

impl LastWins {
    fn next(&mut self) -> Result<Option<Record>, PoolError> {
        let mut current = match self.peeked.take() {
            Some(r) => r,
            None => match self.inner.next()? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        loop {
            match self.inner.next()? {
                Some(next) if next.key == current.key => current = next,
                other => {
                    self.peeked = other;
                    return Ok(Some(current));
                }
            }
        }
    }
}

/// A directory being built.
struct Frame {
    path: Vec<u8>,
    meta: Entry,
    /// A subtree taken whole (from the reference); opened up only if entries arrive below it.
    kept: Option<TreeRef>,
    expanded: bool,
    inherited: Vec<Node>,
    children: Vec<Node>,
}

fn implicit_dir(name: &[u8], started: Timestamp) -> Entry {
    Entry {
        mtime: started,
        ..Entry::new(name.to_vec(), EntryKind::Directory)
    }
}

impl Frame {
    fn new(path: Vec<u8>, meta: Entry, content: &Content) -> Frame {
        Frame {
            path,
            meta,
            kept: match content {
                Content::Tree(t) => Some(*t),
                _ => None,
            },
            expanded: false,
            inherited: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Opens a kept subtree so entries can be added to it.
    fn expand(&mut self, store: &dyn TreeStore) -> Result<(), PoolError> {
        if let (Some(t), false) = (self.kept, self.expanded) {
            self.inherited = store.load_tree(&t.id)?.nodes.clone();
            self.expanded = true;
        }
        Ok(())
    }

    /// Closes the directory: stores its object (unless kept untouched) and returns its node.
    fn finish(self, store: &mut dyn TreeStore) -> Result<Node, PoolError> {
        if let (Some(t), false) = (self.kept, self.expanded) {
            return Ok(Node {
                entry: self.meta,
                content: Content::Tree(t),
            });
        }
        let mut all = self.inherited;
        all.extend(self.children);
        // Later nodes of the same name win: stable sort, then keep the last of each run.
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all.reverse();
        all.dedup_by(|a, b| a.name() == b.name());
        all.reverse();
        let (mut files, mut bytes, mut entries) = (0, 0, 0);
        for n in &all {
            let (f, b, e) = n.totals();
            files += f;
            bytes += b;
            entries += e;
        }
        let id = store.store_tree(&Tree::encode(&all))?;
        Ok(Node {
            entry: self.meta,
            content: Content::Tree(TreeRef {
                id,
                files,
                bytes,
                entries,
            }),
        })
    }
}

fn pop(stack: &mut Vec<Frame>, store: &mut dyn TreeStore) -> Result<(), PoolError> {
    if let Some(frame) = stack.pop() {
        let node = frame.finish(store)?;
        if let Some(parent) = stack.last_mut() {
            parent.children.push(node);
        }
    }
    Ok(())
}

/// Folds the sorted, deduplicated records into directory objects.
fn fold(
    mut records: LastWins,
    store: &mut dyn TreeStore,
    started: Timestamp,
) -> Result<Node, PoolError> {
    let mut stack = vec![Frame::new(
        Vec::new(),
        implicit_dir(b"", started),
        &Content::None,
    )];
    while let Some(record) = records.next()? {
        let path = path_of_key(&record.key);
        let mut node = record.node;
        if path.is_empty() {
            if node.entry.kind == EntryKind::Directory {
                let kept = stack.len() == 1 && stack[0].children.is_empty();
                if kept {
                    stack[0] = Frame::new(Vec::new(), node.entry, &node.content);
                }
            } else {
                tracing::warn!("ignoring a root entry that is not a directory");
            }
            continue;
        }
        while stack.len() > 1 && !is_within(&path, &stack[stack.len() - 1].path) {
            pop(&mut stack, store)?;
        }
        let parent = parent_of(&path);
        loop {
            let Some(top) = stack.last_mut() else {
                return Err(PoolError::index("building tree", "directory stack emptied"));
            };
            if top.path == parent {
                break;
            }
            top.expand(store)?;
            let skip = if top.path.is_empty() {
                0
            } else {
                top.path.len() + 1
            };
            let rest = &parent[skip..];
            let name = rest.split(|&b| b == b'/').next().unwrap_or(rest);
            let child_path = join(&top.path, name);
            let inherited = top
                .inherited
                .binary_search_by(|n| n.name().cmp(name))
                .ok()
                .map(|i| &top.inherited[i])
                .filter(|n| n.entry.kind == EntryKind::Directory);
            let frame = match inherited {
                Some(n) => Frame::new(child_path, n.entry.clone(), &n.content),
                None => Frame::new(child_path, implicit_dir(name, started), &Content::None),
            };
            stack.push(frame);
        }
        let Some(top) = stack.last_mut() else {
            return Err(PoolError::index("building tree", "directory stack emptied"));
        };
        top.expand(store)?;
        node.entry.path = name_of(&path).to_vec();
        if node.entry.kind == EntryKind::Directory {
            let content = node.content.clone();
            stack.push(Frame::new(path, node.entry, &content));
        } else {
            top.children.push(node);
        }
    }
    while stack.len() > 1 {
        pop(&mut stack, store)?;
    }
    match stack.pop() {
        Some(root) => root.finish(store),
        None => Err(PoolError::index("building tree", "no root")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemStore {
        trees: Mutex<HashMap<ObjectId, Arc<Tree>>>,
    }

    impl TreeStore for MemStore {
        fn store_tree(&mut self, bytes: &[u8]) -> Result<ObjectId, PoolError> {
            let id = ObjectId::of(bytes);
            let tree = Tree::decode(&id, bytes)?;
            self.trees.lock().unwrap().insert(id, Arc::new(tree));
            Ok(id)
        }
        fn load_tree(&self, id: &ObjectId) -> Result<Arc<Tree>, PoolError> {
            self.trees
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .ok_or(PoolError::MissingObject { id: *id })
        }
    }

    fn file(size: u64) -> Node {
        let mut e = Entry::new(Vec::new(), EntryKind::File);
        e.size = size;
        Node {
            entry: e,
            content: Content::File(Vec::new()),
        }
    }

    fn dir(mode: u32) -> Node {
        let mut e = Entry::new(Vec::new(), EntryKind::Directory);
        e.mode = mode;
        Node {
            entry: e,
            content: Content::None,
        }
    }

    fn names(store: &MemStore, node: &Node) -> Vec<(Vec<u8>, u32)> {
        let Content::Tree(t) = &node.content else {
            panic!("not a dir")
        };
        store
            .load_tree(&t.id)
            .unwrap()
            .nodes
            .iter()
            .map(|n| (n.name().to_vec(), n.entry.mode))
            .collect()
    }

    fn child(store: &MemStore, node: &Node, name: &[u8]) -> Node {
        let Content::Tree(t) = &node.content else {
            panic!("not a dir")
        };
        store.load_tree(&t.id).unwrap().find(name).unwrap().clone()
    }

    #[test]
    fn any_order_implicit_dirs_last_wins_and_spills() {
        for threshold in [1024u64, 1 << 30] {
            let tmp = tempfile::tempdir().unwrap();
            let mut b = TreeBuilder::new(tmp.path(), threshold);
            let mut store = MemStore::default();
            b.add(b"z/y/x", file(1)).unwrap();
            b.add(b"a", file(2)).unwrap();
            b.add(b"z", dir(0o700)).unwrap();
            b.add(b"a", file(3)).unwrap();
            for i in 0..200u32 {
                b.add(format!("m/{i:03}").as_bytes(), file(1)).unwrap();
            }
            let root = b
                .finish(
                    &mut store,
                    Timestamp {
                        seconds: 5,
                        nanos: 0,
                    },
                )
                .unwrap();
            let top = names(&store, &root);
            assert_eq!(
                top,
                vec![
                    (b"a".to_vec(), 0o644),
                    (b"m".to_vec(), 0o755),
                    (b"z".to_vec(), 0o700)
                ]
            );
            assert_eq!(child(&store, &root, b"a").entry.size, 3);
            let z = child(&store, &root, b"z");
            let y = child(&store, &z, b"y");
            assert_eq!(y.entry.mode, 0o755);
            assert_eq!(y.entry.mtime.seconds, 5);
            assert_eq!(names(&store, &y), vec![(b"x".to_vec(), 0o644)]);
            let Content::Tree(t) = root.content else {
                panic!()
            };
            assert_eq!(t.files, 202);
            assert_eq!(t.bytes, 3 + 1 + 200);
        }
    }

    #[test]
    fn kept_subtree_is_shared_or_opened_up() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = MemStore::default();
        let mut b = TreeBuilder::new(tmp.path(), 1 << 30);
        b.add(b"d/one", file(1)).unwrap();
        b.add(b"d/sub/two", file(2)).unwrap();
        let first = b.finish(&mut store, Timestamp::default()).unwrap();
        let d = child(&store, &first, b"d");

        // Kept whole: same object id.
        let mut b = TreeBuilder::new(tmp.path(), 1 << 30);
        b.add(b"d", d.clone()).unwrap();
        let second = b.finish(&mut store, Timestamp::default()).unwrap();
        assert_eq!(child(&store, &second, b"d"), d);

        // Kept, then an entry added deep inside: the rest is inherited.
        let mut b = TreeBuilder::new(tmp.path(), 1 << 30);
        b.add(b"d", d.clone()).unwrap();
        b.add(b"d/sub/three", file(3)).unwrap();
        let third = b.finish(&mut store, Timestamp::default()).unwrap();
        let d3 = child(&store, &third, b"d");
        assert_eq!(names(&store, &d3).len(), 2);
        let sub = child(&store, &d3, b"sub");
        assert_eq!(
            names(&store, &sub),
            vec![(b"three".to_vec(), 0o644), (b"two".to_vec(), 0o644)]
        );
    }
}
