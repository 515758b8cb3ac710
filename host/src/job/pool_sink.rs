//! A [`BackupSink`] over the pool: the plugin's entries and content go to a
//! [`SnapshotWriter`] that runs on its own thread, so hashing, chunking and compression
//! overlap with the transfer (the plugin and ssh on one core, the pool on the other).
//!
//! Entries and content flow one way through a bounded channel, so the plugin reads the next
//! files while the writer stores the last ones. The channel is bounded in content bytes
//! ([`QUEUE_BYTES`]) as well as in messages: deep enough that the plugin, and the client
//! behind it, keep going while the writer works through a burst of files, and memory stays
//! bounded whatever the file sizes.
//! Commands go over in batches ([`BATCH_COMMANDS`], [`BATCH_BYTES`]): a small file is three
//! of them (begin, content, finish), and a message per command woke the writer thread three
//! times per file.
//! What the plugin sent wrong (a path with `..`) is found before sending, so it is still
//! reported at the call that caused it; a storage failure in the writer is reported at the
//! next call and at commit. `keep` and `keep-tree` depend on the reference, so they send what
//! is batched and wait for the writer's answer.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use hoard_pool::{CommitInfo, PoolError, SnapshotInfo, SnapshotWriter};

use super::convert::to_pool;
use crate::plugin::bindings::Entry;
use crate::plugin::imports::sink::{BackupSink, SinkError};

/// Messages in flight at most. Entries and file boundaries are small; content is held to
/// [`QUEUE_BYTES`].
const QUEUE: usize = 1024;

/// Content bytes in flight at most (one larger write still goes through on its own). With
/// 32 messages of at most 1 MiB, the queue held about ten small files, and on 2 cores the
/// plugin stalled whenever the writer hashed and stored a burst of them: a local full of the
/// 1 GiB benchmark tree took 2.73 s (median of 9), 2.3 to 2.4 s with this bound.
const QUEUE_BYTES: usize = 32 << 20;

/// Commands held back before they go to the writer as one message.
const BATCH_COMMANDS: usize = 64;

/// Content bytes held back at most before the batch goes; a write this large goes at once.
const BATCH_BYTES: usize = 256 << 10;

/// Content bytes queued for the writer thread; a sender over the budget waits for it to drain.
#[derive(Default)]
struct QueuedBytes {
    state: Mutex<QueueState>,
    drained: Condvar,
}

#[derive(Default)]
struct QueueState {
    /// Bytes queued.
    bytes: usize,
    /// Senders waiting for room: only then does a release wake anyone (a wake-up is a
    /// system call, and the writer releases once per write).
    waiting: usize,
    /// The writer has stopped: nobody waits any more.
    stopped: bool,
}

impl QueuedBytes {
    /// Waits until `n` more bytes fit (or nothing is queued, or the writer has stopped), then
    /// counts them in.
    fn reserve(&self, n: usize) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.bytes > 0 && state.bytes + n > QUEUE_BYTES && !state.stopped {
            state.waiting += 1;
            state = match self.drained.wait(state) {
                Ok(state) => state,
                Err(_) => return,
            };
            state.waiting -= 1;
        }
        state.bytes += n;
    }

    /// The writer is done with `n` bytes.
    fn release(&self, n: usize) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.bytes = state.bytes.saturating_sub(n);
        if state.waiting > 0 {
            drop(state);
            self.drained.notify_all();
        }
    }
}

/// Marks the writer stopped when its thread ends, however it ends, so no sender waits forever.
struct StopOnDrop(Arc<QueuedBytes>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.state.lock() {
            state.stopped = true;
        }
        self.0.drained.notify_all();
    }
}

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
    /// Several of the above, in order.
    Batch(Vec<Command>),
}

/// The pool side of a running backup.
pub struct PoolSink {
    commands: Option<SyncSender<Command>>,
    /// Commands not sent yet, and the content bytes among them.
    batch: Vec<Command>,
    batch_bytes: usize,
    thread: Option<JoinHandle<()>>,
    /// The first content write that failed, reported at the next call.
    failed: Arc<Mutex<Option<String>>>,
    /// Content bytes sent and not yet taken by the writer.
    queued: Arc<QueuedBytes>,
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
        let failed = Arc::new(Mutex::new(None));
        let failed_in_thread = failed.clone();
        let queued = Arc::new(QueuedBytes::default());
        let queue = Queue {
            commands: receiver,
            unpacked: std::collections::VecDeque::new(),
            queued: queued.clone(),
            _stop: StopOnDrop(queued.clone()),
        };
        let thread = std::thread::Builder::new()
            .name("pool-writer".into())
            .spawn(move || run_writer(writer, queue, failed_in_thread))?;
        Ok(Self {
            commands: Some(commands),
            batch: Vec::new(),
            batch_bytes: 0,
            thread: Some(thread),
            failed,
            queued,
        })
    }

    /// Adds `command` to the batch, sending the batch once it is full.
    fn send(&mut self, command: Command) -> Result<(), SinkError> {
        self.check_failed()?;
        if let Command::Write(data) = &command {
            self.batch_bytes += data.len();
        }
        self.batch.push(command);
        if self.batch.len() >= BATCH_COMMANDS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is batched.
    fn flush(&mut self) -> Result<(), SinkError> {
        let message = match self.batch.len() {
            0 => return Ok(()),
            1 => self.batch.pop(),
            _ => Some(Command::Batch(std::mem::take(&mut self.batch))),
        };
        self.batch_bytes = 0;
        self.commands
            .as_ref()
            .zip(message)
            .and_then(|(c, message)| c.send(message).ok())
            .ok_or_else(|| SinkError::Storage("the pool writer stopped".into()))
    }

    fn ask<T>(&mut self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SinkError> {
        let (reply, answer) = sync_channel(1);
        self.send(make(reply))?;
        self.flush()?;
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

/// The writer's end of the channel.
struct Queue {
    commands: Receiver<Command>,
    /// The rest of the last batch received.
    unpacked: std::collections::VecDeque<Command>,
    queued: Arc<QueuedBytes>,
    _stop: StopOnDrop,
}

impl Queue {
    /// The next command, batches taken apart; the bytes of a write stop counting against the
    /// budget once taken.
    fn recv(&mut self) -> Result<Command, std::sync::mpsc::RecvError> {
        let command = loop {
            if let Some(command) = self.unpacked.pop_front() {
                break command;
            }
            match self.commands.recv()? {
                Command::Batch(commands) => self.unpacked.extend(commands),
                command => break command,
            }
        };
        if let Command::Write(data) = &command {
            self.queued.release(data.len());
        }
        Ok(command)
    }
}

fn run_writer(mut writer: SnapshotWriter, mut commands: Queue, failed: Arc<Mutex<Option<String>>>) {
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
                // A failure among the last commands before the commit was not reported at
                // any call yet: it must not be committed past.
                let failure = failed.lock().ok().and_then(|f| f.clone());
                let result = match failure {
                    Some(message) => Err(SinkError::Storage(message)),
                    None => writer.commit(info).map_err(storage),
                };
                let _ = reply.send(result);
                return;
            }
            Command::Write(_) | Command::Finish | Command::Abandon => {
                fail(&"content arrived with no open file");
            }
            // Taken apart by `Queue::recv`; a batch inside a batch is never sent.
            Command::Batch(_) => fail(&"a nested batch of commands"),
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
        // The batch goes first when this write alone fills one, so that waiting for room
        // never waits on bytes still held here (the batch holds less than the budget).
        if data.len() >= BATCH_BYTES {
            self.flush()?;
        }
        self.queued.reserve(data.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Reserves `n` bytes on another thread; the receiver yields once the reservation went
    /// through.
    fn reserve_in_background(queued: &Arc<QueuedBytes>, n: usize) -> Receiver<()> {
        let (done, reserved) = sync_channel(1);
        let queued = queued.clone();
        std::thread::spawn(move || {
            queued.reserve(n);
            let _ = done.send(());
        });
        reserved
    }

    #[test]
    fn a_sender_over_the_budget_waits_until_the_writer_takes_bytes() {
        let queued = Arc::new(QueuedBytes::default());
        queued.reserve(QUEUE_BYTES - 10);
        let reserved = reserve_in_background(&queued, 20);
        assert!(reserved.recv_timeout(Duration::from_millis(200)).is_err());
        queued.release(QUEUE_BYTES - 10);
        assert!(reserved.recv_timeout(Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn a_write_larger_than_the_budget_goes_through_alone() {
        let queued = Arc::new(QueuedBytes::default());
        queued.reserve(2 * QUEUE_BYTES);
        queued.release(2 * QUEUE_BYTES);
        queued.reserve(1);
        let reserved = reserve_in_background(&queued, 2 * QUEUE_BYTES);
        assert!(reserved.recv_timeout(Duration::from_millis(200)).is_err());
        queued.release(1);
        assert!(reserved.recv_timeout(Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn a_stopped_writer_never_leaves_a_sender_waiting() {
        let queued = Arc::new(QueuedBytes::default());
        queued.reserve(QUEUE_BYTES);
        let reserved = reserve_in_background(&queued, 1);
        assert!(reserved.recv_timeout(Duration::from_millis(200)).is_err());
        drop(StopOnDrop(queued.clone()));
        assert!(reserved.recv_timeout(Duration::from_secs(10)).is_ok());
        // And later senders pass at once.
        queued.reserve(QUEUE_BYTES);
    }
}
