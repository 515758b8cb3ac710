//! Reading one object record back from a pack and verifying it: the header must name the
//! object, the bytes must decompress, and the plain bytes must hash to the id. A corrupt
//! object is an error, never wrong bytes.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{FLAG_COMPRESSED, ObjectLocation, RECORD_HEADER};
use crate::error::PoolError;
use crate::object::{ObjectId, ObjectKind, decompress};

/// Reads the raw record (header and stored bytes) at `loc`.
pub(crate) fn read_record(
    file: &File,
    id: &ObjectId,
    loc: &ObjectLocation,
) -> Result<Vec<u8>, PoolError> {
    let mut buf = vec![0u8; RECORD_HEADER + loc.stored_len as usize];
    file.read_exact_at(&mut buf, loc.offset)
        .map_err(|e| PoolError::CorruptObject {
            id: *id,
            pack: loc.pack,
            offset: loc.offset,
            detail: format!("cannot read record: {e}"),
        })?;
    Ok(buf)
}

/// Reads, decompresses and verifies the object `id` at `loc`.
pub(crate) fn read_object(
    file: &File,
    id: &ObjectId,
    loc: &ObjectLocation,
) -> Result<Vec<u8>, PoolError> {
    let record = read_record(file, id, loc)?;
    decode_record(&record, id, loc)
}

/// Checks a raw record against its index entry and returns the verified plain bytes.
pub(crate) fn decode_record(
    record: &[u8],
    id: &ObjectId,
    loc: &ObjectLocation,
) -> Result<Vec<u8>, PoolError> {
    let corrupt = |detail: String| PoolError::CorruptObject {
        id: *id,
        pack: loc.pack,
        offset: loc.offset,
        detail,
    };
    if record.len() < RECORD_HEADER {
        return Err(corrupt("record shorter than its header".into()));
    }
    let (header, stored) = record.split_at(RECORD_HEADER);
    if header[0..32] != id.0 {
        return Err(corrupt("record header names another object".into()));
    }
    let kind = ObjectKind::from_byte(header[32]);
    let compressed = header[33] & FLAG_COMPRESSED != 0;
    let plain_len = u32::from_le_bytes([header[34], header[35], header[36], header[37]]);
    let stored_len = u32::from_le_bytes([header[38], header[39], header[40], header[41]]);
    if kind != Some(loc.kind)
        || compressed != loc.compressed
        || plain_len != loc.plain_len
        || stored_len != loc.stored_len
    {
        return Err(corrupt("record header disagrees with the index".into()));
    }
    let plain = if compressed {
        decompress(stored, plain_len as usize)
            .map_err(|e| corrupt(format!("does not decompress: {e}")))?
    } else {
        stored.to_vec()
    };
    if ObjectId::of(&plain) != *id {
        return Err(corrupt("content does not match its hash".into()));
    }
    Ok(plain)
}
