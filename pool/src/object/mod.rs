//! Objects: content addresses ([`ObjectId`]), content-defined chunking of large files
//! ([`Chunker`]) and per-object compression ([`Compressor`]), which leaves objects that
//! look incompressible to a cheap sampling test raw.

mod chunker;
mod compress;
mod compress_workers;
mod entropy;
mod id;

pub use chunker::{ChunkParams, Chunker};
pub use compress::{Compressor, decompress};
pub(crate) use compress_workers::{CompressWorkers, Compressed};
pub use id::ObjectId;

/// What an object holds; recorded in the pack and the index so GC and fsck can tell trees
/// (which reference other objects) from file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A chunk of file content (or a whole small file).
    Data,
    /// A directory object (see [`crate::tree`]).
    Tree,
}

impl ObjectKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            ObjectKind::Data => 0,
            ObjectKind::Tree => 1,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<ObjectKind> {
        match b {
            0 => Some(ObjectKind::Data),
            1 => Some(ObjectKind::Tree),
            _ => None,
        }
    }
}
