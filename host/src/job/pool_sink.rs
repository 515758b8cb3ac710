//! A [`BackupSink`] over the pool: the plugin's entries and content go to a
//! [`SnapshotWriter`] that runs on its own thread, so hashing, chunking and compression
//! overlap with the transfer (the plugin and ssh on one core, the pool on the other).
//!
//! Entries and content flow one way through a bounded channel (memory stays bounded whatever
//! the file size), so the plugin reads the next file while the writer stores the last one.
//! What the plugin sent wrong (a path with `..`) is found before sending, so it is still
//! reported at the call that caused it; a storage failure in the writer is reported at the
//! next call and at commit. `keep` and `keep-tree` depend on the reference, so they wait for
//! the writer's answer.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use hoard_pool::{CommitInfo, PoolError, SnapshotInfo, SnapshotWriter};

use super::convert::to_pool;
use crate::plugin::bindings::Entry;
use crate::plugin::imports::sink::{BackupSink, SinkError};

/// Messages in flight at most (content: each at most 1 MiB from the runtime).
const QUEUE: usize = 32;

type Reply<T> = SyncSender<Result<T, SinkError>>;

enum Command {
    Add(hoard_pool::Entry),
    Keep(Entry, Reply<()>),
    KeepTree(Vec<u8>, Reply<()>),
    BeginFile(hoard_pool::Entry),
    Write(Vec<u8>),
    Finish,
    Abandon,
    Commit(CommitInfo, Reply<SnapshotInfo>),
}

/// The pool side of a running backup.
pub struct PoolSink {
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    /// The first content write that failed, reported at the next call.
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// A pool refusal caused by what the plugin sent is a protocol error; the rest is storage.
fn storage(e: PoolError) -> SinkError {
    match e {
        PoolError::InvalidPath(_)
        | PoolError::PathNotFound { .. }
        | PoolError::NotADirectory { .. }
        | PoolError::NotAFile { .. }
        | PoolError::BadHardlink { .. }
        | PoolError::NotInReference { .. } => SinkError::Protocol(e.to_string()),
        other => SinkError::Storage(other.to_string()),
    }
}

impl PoolSink {
    /// Starts the writer thread for `writer`.
    pub fn new(writer: SnapshotWriter) -> std::io::Result<Self> {
        let (commands, receiver) = sync_channel(QUEUE);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let failed_in_thread = failed.clone();
        let thread = std::thread::Builder::new()
            .name("pool-writer".into())
            .spawn(move || run_writer(writer, receiver, failed_in_thread))?;
        Ok(Self {
            commands: Some(commands),
            thread: Some(thread),
            failed,
        })
    }

    fn send(&self, command: Command) -> Result<(), SinkError> {
        self.check_failed()?;
        self.commands
            .as_ref()
            .and_then(|c| c.send(command).ok())
            .ok_or_else(|| SinkError::Storage("the pool writer stopped".into()))
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SinkError> {
        let (reply, answer) = sync_channel(1);
        self.send(make(reply))?;
        answer
            .recv()
            .map_err(|_| SinkError::Storage("the pool writer stopped".into()))?
    }

    fn check_failed(&self) -> Result<(), SinkError> {
        match self.failed.lock().map(|f| f.clone()) {
            Ok(Some(message)) => Err(SinkError::Storage(message)),
            _ => Ok(()),
        }
    }

    /// Commits the snapshot; the sink is spent afterwards.
    pub fn commit(mut self, info: CommitInfo) -> Result<SnapshotInfo, SinkError> {
        self.check_failed()?;
        let result = self.ask(|reply| Command::Commit(info, reply));
        self.shutdown();
        result
    }

    fn shutdown(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the pool writer thread panicked");
        }
    }
}

impl Drop for PoolSink {
    fn drop(&mut self) {
        // Dropping the channel ends the thread, which drops the writer: an abort.
        self.shutdown();
    }
}

/// The entry in the pool's terms, its paths checked here so that a bad one is refused at the
/// plugin's call, not later in the writer.
fn checked(entry: Entry) -> Result<hoard_pool::Entry, SinkError> {
    let entry = to_pool(entry);
    hoard_pool::normalize_path(&entry.path).map_err(|e| storage(PoolError::from(e)))?;
    if let hoard_pool::EntryKind::Hardlink { target } = &entry.kind {
        hoard_pool::normalize_path(target).map_err(|e| storage(PoolError::from(e)))?;
    }
    Ok(entry)
}

fn run_writer(
    mut writer: SnapshotWriter,
    commands: Receiver<Command>,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
) {
    let fail = |e: &dyn std::fmt::Display| {
        if let Ok(mut f) = failed.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    };
    while let Ok(command) = commands.recv() {
        match command {
            Command::Add(entry) => {
                if let Err(e) = writer.add(entry) {
                    fail(&e);
                }
            }
            Command::Keep(entry, reply) => {
                let _ = reply.send(writer.keep(to_pool(entry)).map_err(storage));
            }
            Command::KeepTree(path, reply) => {
                let _ = reply.send(writer.keep_tree(&path).map_err(storage));
            }
            Command::BeginFile(entry) => {
                let mut file = match writer.begin_file(entry) {
                    Ok(file) => file,
                    Err(e) => {
                        fail(&e);
                        continue;
                    }
                };
                let mut write_error = None;
                loop {
                    match commands.recv() {
                        Ok(Command::Write(data)) => {
                            if write_error.is_none()
                                && let Err(e) = file.write_owned(data)
                            {
                                fail(&e);
                                write_error = Some(e);
                            }
                        }
                        Ok(Command::Finish) => {
                            if write_error.is_none()
                                && let Err(e) = file.finish()
                            {
                                fail(&e);
                            }
                            break;
                        }
                        Ok(Command::Abandon) | Err(_) => break,
                        Ok(_) => {
                            fail(&"the runtime sent an entry while a file was open");
                            break;
                        }
                    }
                }
            }
            Command::Commit(info, reply) => {
                let _ = reply.send(writer.commit(info).map_err(storage));
                return;
            }
            Command::Write(_) | Command::Finish | Command::Abandon => {
                fail(&"content arrived with no open file");
            }
        }
    }
}

impl BackupSink for PoolSink {
    fn add(&mut self, entry: Entry) -> Result<(), SinkError> {
        let entry = checked(entry)?;
        self.send(Command::Add(entry))
    }

    fn begin_file(&mut self, entry: Entry) -> Result<(), SinkError> {
        let entry = checked(entry)?;
        self.send(Command::BeginFile(entry))
    }

    fn write(&mut self, data: Vec<u8>) -> Result<(), SinkError> {
        self.send(Command::Write(data))
    }

    fn finish_file(&mut self, _size: u64) -> Result<(), SinkError> {
        self.send(Command::Finish)
    }

    fn abandon_file(&mut self) {
        let _ = self.send(Command::Abandon);
    }

    fn keep(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.ask(|reply| Command::Keep(entry, reply))
    }

    fn keep_tree(&mut self, path: &[u8]) -> Result<(), SinkError> {
        let path = path.to_vec();
        self.ask(|reply| Command::KeepTree(path, reply))
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
