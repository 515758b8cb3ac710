//! `hoard:plugin/job`: the job log, progress and cancellation.

use std::sync::atomic::Ordering;

use crate::plugin::bindings::transport::hoard::plugin::job::{Host, Level};
use crate::plugin::state::{JobState, LogLevel};

/// Longest log line kept; a plugin cannot flood the job log with one call.
const MAX_LOG_LINE: usize = 8 * 1024;

impl Host for JobState {
    async fn log(&mut self, level: Level, mut message: String) -> wasmtime::Result<()> {
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warning => LogLevel::Warning,
            Level::Error => LogLevel::Error,
        };
        self.log_line(level, message);
        Ok(())
    }

    async fn progress(&mut self, entries: u64, bytes: u64) -> wasmtime::Result<()> {
        self.progress.entries.store(entries, Ordering::Relaxed);
        self.progress.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    async fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.cancel.is_cancelled())
    }
}
