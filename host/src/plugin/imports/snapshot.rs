//! `hoard:plugin/reference` and `hoard:plugin/snapshot`: reading a backup from a plugin.
//!
//! Both read a [`SnapshotSource`]: the reference backup of a backup job (lookups and basis
//! reads for delta transfer), and the backup being restored (a walk, and content copied to the
//! client inside the host).

use std::io::Read;

use tokio::task::block_in_place;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynOutputStream, StreamError};

use crate::plugin::bindings::transport::hoard::plugin::{reference, snapshot};
use crate::plugin::bindings::{Entry, WitError};
use crate::plugin::state::JobState;

/// Largest read a plugin may ask for in one call.
const MAX_READ: u32 = 16 << 20;
/// Largest batch of a walk.
const MAX_BATCH: u32 = 4096;
/// Chunk size of a host-side copy to a stream.
const COPY_CHUNK: usize = 1 << 20;

/// Why a backup could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No such path.
    #[error("{0}: no such entry")]
    NotFound(String),
    /// The path is not acceptable (absolute, `..`).
    #[error("{0}")]
    BadPath(String),
    /// Reading the pool failed (damage is reported as such, never as wrong bytes).
    #[error("{0}")]
    Storage(String),
}

impl From<SourceError> for WitError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(_) | SourceError::BadPath(_) => WitError::Protocol(e.to_string()),
            SourceError::Storage(m) => WitError::Storage(m),
        }
    }
}

/// Entries of a walk, in order.
pub type EntryIter = Box<dyn Iterator<Item = Result<Entry, SourceError>> + Send>;

/// A backup as plugins may read it. Calls are blocking.
pub trait SnapshotSource: Send + Sync {
    /// The entry at `path`.
    fn lookup(&self, path: &[u8]) -> Result<Option<Entry>, SourceError>;
    /// The entries in directory `path`, sorted by name.
    fn list_directory(&self, path: &[u8]) -> Result<Vec<Entry>, SourceError>;
    /// A depth-first walk of the subtree at `path`.
    fn walk(&self, path: &[u8]) -> Result<EntryIter, SourceError>;
    /// The content of the file at `path` from `offset`.
    fn open(&self, path: &[u8], offset: u64) -> Result<Box<dyn Read + Send>, SourceError>;
}

/// A walk in progress, as the plugin holds it.
pub struct WalkHandle {
    entries: EntryIter,
}

fn read_range(
    source: &dyn SnapshotSource,
    path: &[u8],
    offset: u64,
    length: u32,
) -> Result<Vec<u8>, WitError> {
    let length = length.min(MAX_READ);
    let reader = source.open(path, offset)?;
    let mut buffer = Vec::with_capacity(length as usize);
    reader
        .take(u64::from(length))
        .read_to_end(&mut buffer)
        .map_err(|e| WitError::Storage(format!("{}: {e}", String::from_utf8_lossy(path))))?;
    Ok(buffer)
}

impl JobState {
    fn reference_source(&self) -> Result<std::sync::Arc<dyn SnapshotSource>, WitError> {
        self.reference.clone().ok_or_else(|| {
            WitError::Protocol(format!(
                "plugin {}: this job has no reference backup",
                self.plugin
            ))
        })
    }

    fn restore_source(&self) -> Result<std::sync::Arc<dyn SnapshotSource>, WitError> {
        self.snapshot.clone().ok_or_else(|| {
            WitError::NotGranted(format!("plugin {}: this job restores nothing", self.plugin))
        })
    }
}

impl reference::Host for JobState {
    async fn lookup(&mut self, path: Vec<u8>) -> wasmtime::Result<Result<Option<Entry>, WitError>> {
        Ok(self
            .reference_source()
            .and_then(|s| block_in_place(|| s.lookup(&path)).map_err(WitError::from)))
    }

    async fn list_directory(
        &mut self,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<Entry>, WitError>> {
        Ok(self
            .reference_source()
            .and_then(|s| block_in_place(|| s.list_directory(&path)).map_err(WitError::from)))
    }

    async fn read(
        &mut self,
        path: Vec<u8>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, WitError>> {
        Ok(self
            .reference_source()
            .and_then(|s| block_in_place(|| read_range(s.as_ref(), &path, offset, length))))
    }
}

impl snapshot::Host for JobState {
    async fn entries(
        &mut self,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<WalkHandle>, WitError>> {
        let entries = match self
            .restore_source()
            .and_then(|s| block_in_place(|| s.walk(&path)).map_err(WitError::from))
        {
            Ok(entries) => entries,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table().push(WalkHandle { entries })?))
    }

    async fn read(
        &mut self,
        path: Vec<u8>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, WitError>> {
        Ok(self
            .restore_source()
            .and_then(|s| block_in_place(|| read_range(s.as_ref(), &path, offset, length))))
    }

    async fn copy_to(
        &mut self,
        path: Vec<u8>,
        offset: u64,
        length: u64,
        destination: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        let source = match self.restore_source() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let mut reader = match block_in_place(|| source.open(&path, offset)) {
            Ok(r) => r.take(length),
            Err(e) => return Ok(Err(e.into())),
        };
        let mut copied = 0u64;
        let mut buffer = vec![0u8; COPY_CHUNK];
        loop {
            let n = match block_in_place(|| reader.read(&mut buffer)) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Ok(Err(WitError::Storage(format!(
                        "{}: {e}",
                        String::from_utf8_lossy(&path)
                    ))));
                }
            };
            let stream = self.table().get_mut(&destination)?;
            match stream
                .blocking_write_and_flush(bytes::Bytes::copy_from_slice(&buffer[..n]))
                .await
            {
                Ok(()) => {}
                Err(StreamError::Closed) => {
                    return Ok(Err(WitError::Client("the client closed its input".into())));
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    return Ok(Err(WitError::Client(e.to_string())));
                }
                Err(StreamError::Trap(e)) => return Err(e),
            }
            copied += n as u64;
            self.progress
                .bytes
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Ok(copied))
    }
}

impl snapshot::HostWalk for JobState {
    async fn next(
        &mut self,
        this: Resource<WalkHandle>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<Entry>, WitError>> {
        let walk = self.table().get_mut(&this)?;
        let max = max.clamp(1, MAX_BATCH) as usize;
        let batch: Result<Vec<Entry>, SourceError> =
            block_in_place(|| walk.entries.by_ref().take(max).collect());
        Ok(batch.map_err(WitError::from))
    }

    async fn drop(&mut self, this: Resource<WalkHandle>) -> wasmtime::Result<()> {
        self.table().delete(this)?;
        Ok(())
    }
}
