//! Pack files: large append-only files holding many objects, each as a self-describing record
//! (id, kind, flags, lengths, bytes). [`PackWriter`] appends and makes a pack durable;
//! [`read_object`] reads one object back and verifies it.

mod reader;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use reader::{decode_record, read_object, read_record};
pub(crate) use writer::{FinishedPack, PackWriter, sync_dir};

use crate::object::{ObjectId, ObjectKind};

/// First bytes of every pack file.
pub(crate) const PACK_MAGIC: &[u8; 8] = b"HOARDPK1";
/// Size of a record header: id, kind, flags, plain length, stored length.
pub(crate) const RECORD_HEADER: usize = 32 + 1 + 1 + 4 + 4;
/// Record flag: the bytes are zstd-compressed.
pub(crate) const FLAG_COMPRESSED: u8 = 1;

/// The name of a pack file (a random 64-bit number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackId(pub u64);

impl PackId {
    /// A fresh random id.
    pub(crate) fn random() -> PackId {
        PackId(fastrand::u64(1..))
    }

    /// The pack's file path under the pool's `packs/` directory.
    pub(crate) fn path(&self, packs_dir: &Path) -> PathBuf {
        packs_dir
            .join(format!("{:02x}", self.0 >> 56))
            .join(format!("{:016x}.pack", self.0))
    }

    /// Parses a pack file name (`<16 hex>.pack`).
    pub(crate) fn from_file_name(name: &str) -> Option<PackId> {
        let hex = name.strip_suffix(".pack")?;
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(PackId)
    }
}

impl fmt::Display for PackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Where an object lives and how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLocation {
    /// The pack file.
    pub pack: PackId,
    /// Offset of the record header in the pack.
    pub offset: u64,
    /// Bytes stored (after compression).
    pub stored_len: u32,
    /// Bytes of plain content.
    pub plain_len: u32,
    /// Data or tree.
    pub kind: ObjectKind,
    /// Whether the stored bytes are zstd-compressed.
    pub compressed: bool,
}

impl ObjectLocation {
    /// Size of the whole record in the pack (header and bytes).
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER as u64 + self.stored_len as u64
    }

    /// Encodes the location for the index (26 bytes).
    pub(crate) fn encode(&self) -> [u8; 26] {
        let mut out = [0u8; 26];
        out[0..8].copy_from_slice(&self.pack.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..20].copy_from_slice(&self.stored_len.to_le_bytes());
        out[20..24].copy_from_slice(&self.plain_len.to_le_bytes());
        out[24] = self.kind.to_byte();
        out[25] = if self.compressed { FLAG_COMPRESSED } else { 0 };
        out
    }

    /// Decodes an index value; `None` if malformed.
    pub(crate) fn decode(b: &[u8]) -> Option<ObjectLocation> {
        if b.len() != 26 {
            return None;
        }
        Some(ObjectLocation {
            pack: PackId(u64::from_le_bytes(b[0..8].try_into().ok()?)),
            offset: u64::from_le_bytes(b[8..16].try_into().ok()?),
            stored_len: u32::from_le_bytes(b[16..20].try_into().ok()?),
            plain_len: u32::from_le_bytes(b[20..24].try_into().ok()?),
            kind: ObjectKind::from_byte(b[24])?,
            compressed: b[25] & FLAG_COMPRESSED != 0,
        })
    }
}

/// Encodes a record header.
pub(crate) fn encode_header(
    id: &ObjectId,
    kind: ObjectKind,
    compressed: bool,
    plain_len: u32,
    stored_len: u32,
) -> [u8; RECORD_HEADER] {
    let mut h = [0u8; RECORD_HEADER];
    h[0..32].copy_from_slice(&id.0);
    h[32] = kind.to_byte();
    h[33] = if compressed { FLAG_COMPRESSED } else { 0 };
    h[34..38].copy_from_slice(&plain_len.to_le_bytes());
    h[38..42].copy_from_slice(&stored_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_round_trip_and_names() {
        let loc = ObjectLocation {
            pack: PackId(0xdead_beef_0000_0001),
            offset: 12345,
            stored_len: 77,
            plain_len: 99,
            kind: ObjectKind::Tree,
            compressed: true,
        };
        assert_eq!(ObjectLocation::decode(&loc.encode()), Some(loc));
        let p = loc.pack.path(Path::new("/p"));
        assert_eq!(p, Path::new("/p/de/deadbeef00000001.pack"));
        assert_eq!(
            PackId::from_file_name("deadbeef00000001.pack"),
            Some(loc.pack)
        );
        assert_eq!(PackId::from_file_name("x.pack"), None);
    }
}
