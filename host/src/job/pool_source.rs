//! A [`SnapshotSource`] over a committed pool snapshot: the reference of a backup, or the
//! backup being restored (optionally limited to a subtree).

use std::io::Read;

use hoard_pool::{PoolError, SnapshotReader};

use super::convert::to_wit;
use crate::plugin::bindings::Entry;
use crate::plugin::imports::snapshot::{EntryIter, SnapshotSource, SourceError};

/// Bytes fetched per step when reading from an offset.
const RANGE_STEP: u64 = 1 << 20;

/// A snapshot as plugins read it.
#[derive(Clone, Debug)]
pub struct PoolSource {
    reader: SnapshotReader,
}

impl PoolSource {
    /// The whole snapshot.
    pub fn new(reader: SnapshotReader) -> Self {
        Self { reader }
    }
}

fn source_error(e: PoolError) -> SourceError {
    match e {
        PoolError::PathNotFound { path, .. } => SourceError::NotFound(path.to_string()),
        PoolError::InvalidPath(p) => SourceError::BadPath(p.to_string()),
        other => SourceError::Storage(other.to_string()),
    }
}

impl SnapshotSource for PoolSource {
    fn lookup(&self, path: &[u8]) -> Result<Option<Entry>, SourceError> {
        Ok(self.reader.lookup(path).map_err(source_error)?.map(to_wit))
    }

    fn list_directory(&self, path: &[u8]) -> Result<Vec<Entry>, SourceError> {
        Ok(self
            .reader
            .list_dir(path)
            .map_err(source_error)?
            .into_iter()
            .map(to_wit)
            .collect())
    }

    fn walk(&self, path: &[u8]) -> Result<EntryIter, SourceError> {
        let walk = self.reader.walk(path);
        Ok(Box::new(walk.map(|e| e.map(to_wit).map_err(source_error))))
    }

    fn open(&self, path: &[u8], offset: u64) -> Result<Box<dyn Read + Send>, SourceError> {
        if offset == 0 {
            return Ok(Box::new(self.reader.open_file(path).map_err(source_error)?));
        }
        // Check the file exists now, so the error comes at open, not at the first read.
        self.reader
            .read_range(path, offset, 0)
            .map_err(source_error)?;
        Ok(Box::new(RangeReader {
            reader: self.reader.clone(),
            path: path.to_vec(),
            offset,
            buffer: Vec::new(),
            position: 0,
        }))
    }
}

/// Reads a file from an offset, a range at a time.
struct RangeReader {
    reader: SnapshotReader,
    path: Vec<u8>,
    offset: u64,
    buffer: Vec<u8>,
    position: usize,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.buffer.len() {
            self.buffer = self
                .reader
                .read_range(&self.path, self.offset, RANGE_STEP)
                .map_err(std::io::Error::other)?;
            self.position = 0;
            self.offset += self.buffer.len() as u64;
            if self.buffer.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buffer.len() - self.position);
        out[..n].copy_from_slice(&self.buffer[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
