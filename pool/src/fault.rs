//! Injected write failures: a byte budget for pack writes after which every write fails as if
//! the disk were full. Used by tests to prove a failing write leaves a consistent pool.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A shared budget of pack bytes that may still be written; when spent, writes fail with
/// `StorageFull`. Clone it into [`crate::PoolOptions::write_faults`] and keep a handle to
/// re-arm or disarm it.
#[derive(Debug, Clone)]
pub struct WriteFaults {
    remaining: Arc<AtomicI64>,
}

impl WriteFaults {
    /// Writes fail once `bytes` more bytes have been written to packs.
    pub fn fail_after(bytes: u64) -> WriteFaults {
        WriteFaults {
            remaining: Arc::new(AtomicI64::new(bytes.min(i64::MAX as u64) as i64)),
        }
    }

    /// Resets the budget to `bytes`.
    pub fn set_remaining(&self, bytes: u64) {
        self.remaining
            .store(bytes.min(i64::MAX as u64) as i64, Ordering::SeqCst);
    }

    /// Never fail again (until re-armed).
    pub fn disarm(&self) {
        self.remaining.store(i64::MAX, Ordering::SeqCst);
    }

    /// Takes `n` bytes from the budget or fails.
    pub(crate) fn charge(&self, n: usize) -> io::Result<()> {
        let n = n as i64;
        let before = self.remaining.fetch_sub(n, Ordering::SeqCst);
        if before < n {
            self.remaining.store(0, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            ));
        }
        Ok(())
    }
}
