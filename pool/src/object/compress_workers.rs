//! Compressing objects on worker threads, so that one writer's hashing, deduplication and
//! pack appends overlap with zstd (the most expensive step of storing new data) and a
//! multi-core server compresses several objects at once.
//!
//! Jobs go in through a bounded queue (memory stays bounded by a few objects per worker);
//! results come back in completion order, not submission order: a pack's record order does
//! not matter, only each record's id.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{Compressor, ObjectId, ObjectKind};

/// Most worker threads one writer starts, whatever the machine has.
const MAX_WORKERS: usize = 4;

/// Queued jobs per worker beyond the one each is compressing.
const QUEUE_PER_WORKER: usize = 2;

/// One object to compress.
struct Job {
    id: ObjectId,
    kind: ObjectKind,
    plain: Vec<u8>,
}

/// One object, compressed (or left raw when compression did not pay).
#[derive(Debug)]
pub(crate) struct Compressed {
    /// The object's id (the hash of its plain bytes).
    pub id: ObjectId,
    /// What the object holds.
    pub kind: ObjectKind,
    /// Length of the plain bytes.
    pub plain_len: usize,
    /// Whether `stored` is zstd-compressed.
    pub compressed: bool,
    /// The bytes to append to the pack.
    pub stored: Vec<u8>,
}

/// A writer's compression workers.
pub(crate) struct CompressWorkers {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<std::io::Result<Compressed>>,
    workers: Vec<JoinHandle<()>>,
    /// Jobs submitted whose result has not been taken yet.
    outstanding: usize,
}

impl std::fmt::Debug for CompressWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressWorkers")
            .field("workers", &self.workers.len())
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl CompressWorkers {
    /// Workers compressing at zstd `level`, one per available core up to a small maximum.
    pub(crate) fn start(level: i32) -> std::io::Result<CompressWorkers> {
        let count = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, MAX_WORKERS);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(count * QUEUE_PER_WORKER);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (result_tx, results) = mpsc::channel();
        let mut workers = Vec::with_capacity(count);
        for n in 0..count {
            let mut compressor = Compressor::new(level)?;
            let job_rx = job_rx.clone();
            let result_tx = result_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("hoard-compress-{n}"))
                .spawn(move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let result = compress_job(&mut compressor, job);
                        if result_tx.send(result).is_err() {
                            return;
                        }
                    }
                })?;
            workers.push(handle);
        }
        Ok(CompressWorkers {
            jobs: Some(job_tx),
            results,
            workers,
            outstanding: 0,
        })
    }

    /// Queues one object; blocks while the queue is full.
    pub(crate) fn submit(
        &mut self,
        id: ObjectId,
        kind: ObjectKind,
        plain: Vec<u8>,
    ) -> std::io::Result<()> {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job { id, kind, plain }).is_ok());
        if !sent {
            return Err(std::io::Error::other("compression workers stopped"));
        }
        self.outstanding += 1;
        Ok(())
    }

    /// A finished object if one is ready, without waiting.
    pub(crate) fn try_next(&mut self) -> Option<std::io::Result<Compressed>> {
        match self.results.try_recv() {
            Ok(result) => {
                self.outstanding -= 1;
                Some(result)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => self.lost(),
        }
    }

    /// The next finished object, waiting for it; `None` once nothing is outstanding.
    pub(crate) fn next(&mut self) -> Option<std::io::Result<Compressed>> {
        if self.outstanding == 0 {
            return None;
        }
        match self.results.recv() {
            Ok(result) => {
                self.outstanding -= 1;
                Some(result)
            }
            Err(_) => self.lost(),
        }
    }

    /// Reports the outstanding jobs as failed when every worker is gone.
    fn lost(&mut self) -> Option<std::io::Result<Compressed>> {
        if self.outstanding == 0 {
            return None;
        }
        self.outstanding = 0;
        Some(Err(std::io::Error::other("a compression worker stopped")))
    }
}

impl Drop for CompressWorkers {
    fn drop(&mut self) {
        // Closing the queue ends every worker once it finishes its current object.
        self.jobs = None;
        while self.results.try_recv().is_ok() {}
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn compress_job(compressor: &mut Compressor, job: Job) -> std::io::Result<Compressed> {
    let plain_len = job.plain.len();
    let (compressed, stored) = compressor.compress_owned(job.plain)?;
    Ok(Compressed {
        id: job.id,
        kind: job.kind,
        plain_len,
        compressed,
        stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_submitted_object_comes_back_intact() {
        let mut workers = CompressWorkers::start(3).expect("workers");
        let mut sent = std::collections::HashMap::new();
        let mut back = Vec::new();
        for n in 0..200u32 {
            let plain: Vec<u8> = if n % 2 == 0 {
                n.to_le_bytes().repeat(500)
            } else {
                let mut state = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                (0..2000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 32) as u8
                    })
                    .collect()
            };
            let id = ObjectId::of(&plain);
            sent.insert(id, plain.clone());
            workers.submit(id, ObjectKind::Data, plain).expect("submit");
            while let Some(done) = workers.try_next() {
                back.push(done.expect("compressed"));
            }
        }
        while let Some(done) = workers.next() {
            back.push(done.expect("compressed"));
        }
        assert_eq!(back.len(), sent.len());
        assert!(back.iter().any(|c| c.compressed) && back.iter().any(|c| !c.compressed));
        for c in back {
            let plain = if c.compressed {
                crate::object::decompress(&c.stored, c.plain_len).expect("decompress")
            } else {
                c.stored
            };
            assert_eq!(Some(&plain), sent.get(&c.id));
        }
    }
}
