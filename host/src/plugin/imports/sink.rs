//! `hoard:plugin/sink`: where a backup's entries and file content go.
//!
//! The host side is the [`BackupSink`] trait, implemented over the pool (and by counters for
//! benchmarks). This layer enforces the sink's rules whatever the implementation: one open file
//! at a time, content no longer than declared, `finish` only with the declared size unless the
//! plugin says the file changed while it was read.

use tokio::task::block_in_place;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, StreamError};

use crate::plugin::bindings::transport::hoard::plugin::sink::{Host, HostFileWriter};
use crate::plugin::bindings::{Entry, WitError};
use crate::plugin::state::{JobState, LogLevel};

/// Largest chunk moved per host-side read in `copy-from`.
const COPY_CHUNK: usize = 1 << 20;

/// Why the sink refused something.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The plugin sent something against the rules (a path with `..`, a hard link to nothing).
    #[error("{0}")]
    Protocol(String),
    /// Storing failed (disk full, pool damage).
    #[error("{0}")]
    Storage(String),
}

impl From<SinkError> for WitError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Protocol(m) => WitError::Protocol(m),
            SinkError::Storage(m) => WitError::Storage(m),
        }
    }
}

/// Where a backup goes. Calls are blocking (storage work); the runtime calls them from a
/// blocking-capable context.
pub trait BackupSink: Send {
    /// Records an entry without content.
    fn add(&mut self, entry: Entry) -> Result<(), SinkError>;
    /// Starts a file; its content follows through `write`.
    fn begin_file(&mut self, entry: Entry) -> Result<(), SinkError>;
    /// Appends content to the open file. The buffer is handed over, so the pool can keep it
    /// as an object's bytes without copying them again.
    fn write(&mut self, data: Vec<u8>) -> Result<(), SinkError>;
    /// Completes the open file; `size` is the number of bytes written.
    fn finish_file(&mut self, size: u64) -> Result<(), SinkError>;
    /// Drops the open file (it is left out of the backup).
    fn abandon_file(&mut self);
    /// Records an entry whose content is the reference's.
    fn keep(&mut self, entry: Entry) -> Result<(), SinkError>;
    /// Keeps a subtree of the reference.
    fn keep_tree(&mut self, path: &[u8]) -> Result<(), SinkError>;
    /// The concrete sink back, once the job is over (to commit it).
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// A file being written, as the plugin holds it.
pub struct FileWriterHandle {
    path: Vec<u8>,
    declared: u64,
    written: u64,
    finished: bool,
}

impl JobState {
    fn sink(&mut self) -> Result<&mut Box<dyn BackupSink>, WitError> {
        let plugin = self.plugin.clone();
        self.sink.as_mut().ok_or_else(|| {
            WitError::NotGranted(format!(
                "plugin {plugin}: this job has no sink (not a backup)"
            ))
        })
    }

    fn open_file_check(&self, this: &Resource<FileWriterHandle>) -> Result<(), WitError> {
        match &self.open_file {
            Some(open) if open.rep() == this.rep() => Ok(()),
            _ => Err(WitError::Protocol(
                "this file writer is not the open file".into(),
            )),
        }
    }

    fn count_file_bytes(
        &mut self,
        this: &Resource<FileWriterHandle>,
        n: u64,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let handle = self.table().get_mut(this)?;
        handle.written += n;
        if handle.written > handle.declared {
            let message = format!(
                "{}: more content than the declared {} bytes",
                String::from_utf8_lossy(&handle.path),
                handle.declared
            );
            return Ok(Err(WitError::Protocol(message)));
        }
        self.progress
            .bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(Ok(()))
    }
}

impl Host for JobState {
    async fn add(&mut self, entry: Entry) -> wasmtime::Result<Result<(), WitError>> {
        let result = match self.sink() {
            Ok(sink) => block_in_place(|| sink.add(entry)).map_err(WitError::from),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            self.progress
                .entries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn begin_file(
        &mut self,
        entry: Entry,
    ) -> wasmtime::Result<Result<Resource<FileWriterHandle>, WitError>> {
        if self.open_file.is_some() {
            return Ok(Err(WitError::Protocol(
                "begin-file while another file is open".into(),
            )));
        }
        let path = entry.path.clone();
        let declared = entry.size;
        let sink = match self.sink() {
            Ok(sink) => sink,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = block_in_place(|| sink.begin_file(entry)) {
            return Ok(Err(e.into()));
        }
        let handle = self.table().push(FileWriterHandle {
            path,
            declared,
            written: 0,
            finished: false,
        })?;
        self.open_file = Some(Resource::new_borrow(handle.rep()));
        self.progress
            .entries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Ok(handle))
    }

    async fn keep(&mut self, entry: Entry) -> wasmtime::Result<Result<(), WitError>> {
        let result = match self.sink() {
            Ok(sink) => block_in_place(|| sink.keep(entry)).map_err(WitError::from),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            self.progress
                .entries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn keep_tree(&mut self, path: Vec<u8>) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match self.sink() {
            Ok(sink) => block_in_place(|| sink.keep_tree(&path)).map_err(WitError::from),
            Err(e) => Err(e),
        })
    }
}

impl HostFileWriter for JobState {
    async fn write(
        &mut self,
        this: Resource<FileWriterHandle>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        if let Err(e) = self.open_file_check(&this) {
            return Ok(Err(e));
        }
        if let Err(e) = self.count_file_bytes(&this, data.len() as u64)? {
            return Ok(Err(e));
        }
        Ok(match self.sink() {
            Ok(sink) => block_in_place(|| sink.write(data)).map_err(WitError::from),
            Err(e) => Err(e),
        })
    }

    async fn copy_from(
        &mut self,
        this: Resource<FileWriterHandle>,
        source: Resource<DynInputStream>,
        length: u64,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        if let Err(e) = self.open_file_check(&this) {
            return Ok(Err(e));
        }
        let mut moved = 0u64;
        let mut ended = false;
        while moved < length && !ended {
            // Fill a batch (what is left of the file, at most `COPY_CHUNK`) before handing it
            // to the sink: a small file becomes its object in one write with no further copy,
            // and a large one goes in 1 MiB steps rather than one per ssh packet or pipe read
            // (each write is a message to the pool's writer thread).
            let batch_size = usize::try_from(length - moved)
                .unwrap_or(usize::MAX)
                .min(COPY_CHUNK);
            let mut batch: Vec<u8> = Vec::with_capacity(batch_size);
            let stream = self.table().get_mut(&source)?;
            while !ended && batch.len() < batch_size {
                match stream.blocking_read(batch_size - batch.len()).await {
                    Ok(chunk) => batch.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => ended = true,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Ok(Err(WitError::Client(format!(
                            "reading the client stream: {e}"
                        ))));
                    }
                    Err(StreamError::Trap(e)) => return Err(e),
                }
            }
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.count_file_bytes(&this, batch.len() as u64)? {
                return Ok(Err(e));
            }
            let sink = match self.sink() {
                Ok(sink) => sink,
                Err(e) => return Ok(Err(e)),
            };
            let batch_len = batch.len() as u64;
            if let Err(e) = block_in_place(|| sink.write(batch)) {
                return Ok(Err(e.into()));
            }
            moved += batch_len;
        }
        Ok(Ok(moved))
    }

    async fn finish(
        &mut self,
        this: Resource<FileWriterHandle>,
        allow_size_change: bool,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        if let Err(e) = self.open_file_check(&this) {
            return Ok(Err(e));
        }
        let handle = self.table().get_mut(&this)?;
        let (written, declared, path) = (handle.written, handle.declared, handle.path.clone());
        if written != declared {
            let message = format!(
                "{}: {written} bytes of content, {declared} declared",
                String::from_utf8_lossy(&path)
            );
            if !allow_size_change {
                return Ok(Err(WitError::Protocol(message)));
            }
            self.log_line(LogLevel::Warning, format!("{message} (changed while read)"));
        }
        let result = match self.sink() {
            Ok(sink) => block_in_place(|| sink.finish_file(written)).map_err(WitError::from),
            Err(e) => Err(e),
        };
        self.table().get_mut(&this)?.finished = true;
        self.open_file = None;
        Ok(result.map(|()| written))
    }

    async fn drop(&mut self, this: Resource<FileWriterHandle>) -> wasmtime::Result<()> {
        let rep = this.rep();
        let handle = self.table().delete(this)?;
        let is_open = self
            .open_file
            .as_ref()
            .is_some_and(|open| open.rep() == rep);
        if !handle.finished && is_open {
            self.open_file = None;
            if let Some(sink) = self.sink.as_mut() {
                block_in_place(|| sink.abandon_file());
            }
            self.log_line(
                LogLevel::Warning,
                format!(
                    "{}: file abandoned before finish, left out",
                    String::from_utf8_lossy(&handle.path)
                ),
            );
        }
        Ok(())
    }
}

/// A sink that stores nothing: it counts entries and bytes (and, when made with
/// [`CountingSink::hashing`], hashes the content), for benchmarks, dry runs and tests of the
/// plugin boundary.
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Whether content is hashed.
    hash: bool,
    /// Entries received (every kind).
    pub entries: u64,
    /// Content bytes received.
    pub bytes: u64,
    /// Paths received, in order.
    pub paths: Vec<Vec<u8>>,
    hasher: blake3::Hasher,
}

impl CountingSink {
    /// A sink that also hashes what it receives (see [`content_hash`](Self::content_hash)).
    pub fn hashing() -> Self {
        Self {
            hash: true,
            ..Self::default()
        }
    }

    /// BLAKE3 of all content received, in order (of nothing, unless made with `hashing`).
    pub fn content_hash(&self) -> blake3::Hash {
        self.hasher.finalize()
    }
}

impl BackupSink for CountingSink {
    fn add(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.entries += 1;
        self.paths.push(entry.path);
        Ok(())
    }

    fn begin_file(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.add(entry)
    }

    fn write(&mut self, data: Vec<u8>) -> Result<(), SinkError> {
        self.bytes += data.len() as u64;
        if self.hash {
            self.hasher.update(&data);
        }
        Ok(())
    }

    fn finish_file(&mut self, _size: u64) -> Result<(), SinkError> {
        Ok(())
    }

    fn abandon_file(&mut self) {}

    fn keep(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.add(entry)
    }

    fn keep_tree(&mut self, path: &[u8]) -> Result<(), SinkError> {
        self.paths.push(path.to_vec());
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
