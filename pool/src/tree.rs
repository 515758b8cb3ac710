//! Directory objects: a directory's entries (sorted by name) with their content references,
//! encoded compactly and stored as content-addressed objects, so an unchanged subtree has the
//! same id in every snapshot and host that contains it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, EntryKind};
use crate::error::PoolError;
use crate::object::ObjectId;

/// Format version byte at the start of every directory object.
const TREE_VERSION: u8 = 1;

/// One chunk of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    /// The chunk object.
    pub id: ObjectId,
    /// Its plain length.
    pub len: u32,
}

/// A directory's subtree: its object and totals over everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct TreeRef {
    /// The directory object.
    pub id: ObjectId,
    /// Regular files below.
    pub files: u64,
    /// Bytes of regular files below.
    pub bytes: u64,
    /// Entries of any kind below.
    pub entries: u64,
}

/// What a node's content is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Content {
    /// No content (symlinks, devices, hardlinks, ... and directories not yet built).
    None,
    /// A regular file: its chunks in order (empty for an empty file).
    File(Vec<ChunkRef>),
    /// A directory.
    Tree(TreeRef),
}

/// One entry of a directory: metadata (with `entry.path` holding just the name) and content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Metadata; `path` is the name within the directory (`""` for a snapshot root).
    pub entry: Entry,
    /// Content reference.
    pub content: Content,
}

impl Node {
    /// The name within the directory.
    pub(crate) fn name(&self) -> &[u8] {
        &self.entry.path
    }

    /// The entry with its full path.
    pub(crate) fn to_entry(&self, path: Vec<u8>) -> Entry {
        Entry {
            path,
            ..self.entry.clone()
        }
    }

    /// (files, bytes, entries) this node contributes to its parent's totals.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        match (&self.entry.kind, &self.content) {
            (_, Content::Tree(t)) => (t.files, t.bytes, t.entries + 1),
            (EntryKind::File, _) => (1, self.entry.size, 1),
            _ => (0, 0, 1),
        }
    }
}

/// A decoded directory object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    /// Entries sorted by name, names unique.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Encodes a directory's nodes (already sorted by name).
    pub(crate) fn encode(nodes: &[Node]) -> Vec<u8> {
        let out = vec![TREE_VERSION];
        // Serializing plain structs into a Vec cannot fail.
        if let Ok(v) = postcard::to_extend(nodes, out) {
            return v;
        }
        vec![TREE_VERSION]
    }

    /// Decodes a directory object.
    pub(crate) fn decode(id: &ObjectId, bytes: &[u8]) -> Result<Tree, PoolError> {
        match bytes.split_first() {
            Some((&TREE_VERSION, rest)) => {
                let nodes: Vec<Node> =
                    postcard::from_bytes(rest).map_err(|e| PoolError::CorruptTree {
                        id: *id,
                        detail: e.to_string(),
                    })?;
                Ok(Tree { nodes })
            }
            Some((v, _)) => Err(PoolError::CorruptTree {
                id: *id,
                detail: format!("unknown directory format {v}"),
            }),
            None => Err(PoolError::CorruptTree {
                id: *id,
                detail: "empty".into(),
            }),
        }
    }

    /// The node named `name`.
    pub(crate) fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// A bounded cache of decoded directory objects, cleared wholesale when it holds too many
/// nodes.
#[derive(Default)]
pub(crate) struct TreeCache {
    trees: std::collections::HashMap<ObjectId, Arc<Tree>>,
    nodes: usize,
}

impl TreeCache {
    /// Most nodes held before the cache is emptied.
    const MAX_NODES: usize = 150_000;

    pub(crate) fn get(&self, id: &ObjectId) -> Option<Arc<Tree>> {
        self.trees.get(id).cloned()
    }

    pub(crate) fn insert(&mut self, id: ObjectId, tree: Arc<Tree>) {
        if self.nodes + tree.nodes.len() > Self::MAX_NODES {
            self.trees.clear();
            self.nodes = 0;
        }
        self.nodes += tree.nodes.len();
        self.trees.insert(id, tree);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_find() {
        let mut a = Entry::new(b"a".to_vec(), EntryKind::File);
        a.size = 3;
        let b = Entry::new(
            b"\xffb".to_vec(),
            EntryKind::Symlink {
                target: b"/x".to_vec(),
            },
        );
        let nodes = vec![
            Node {
                entry: a,
                content: Content::File(vec![ChunkRef {
                    id: ObjectId::of(b"abc"),
                    len: 3,
                }]),
            },
            Node {
                entry: b,
                content: Content::None,
            },
        ];
        let bytes = Tree::encode(&nodes);
        let id = ObjectId::of(&bytes);
        let tree = Tree::decode(&id, &bytes).unwrap();
        assert_eq!(tree.nodes, nodes);
        assert!(tree.find(b"a").is_some());
        assert!(tree.find(b"zz").is_none());
        assert!(Tree::decode(&id, &[9, 9]).is_err());
        assert!(Tree::decode(&id, &[TREE_VERSION, 200]).is_err());
    }
}
