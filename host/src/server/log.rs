//! The server's own log: what it decided and did, one timestamped line each, in
//! `<pool>/logs/server.log`; at 10 MiB the file is rotated (`server.log.1` .. `.4`, the
//! oldest dropped). Each line also goes to `tracing`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Size at which the log is rotated.
const ROTATE_AT: u64 = 10 << 20;
/// Rotated files kept.
const KEEP: u32 = 4;

/// The server's log file.
#[derive(Debug)]
pub struct ServerLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    rotate_at: u64,
}

impl ServerLog {
    /// The log in `<pool_dir>/logs`.
    pub fn new(pool_dir: &Path) -> ServerLog {
        ServerLog::at(pool_dir.join("logs").join("server.log"), ROTATE_AT)
    }

    /// A log at `path`, rotated at `rotate_at` bytes.
    pub fn at(path: PathBuf, rotate_at: u64) -> ServerLog {
        ServerLog {
            path,
            file: Mutex::new(None),
            rotate_at,
        }
    }

    /// Where the current log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one line.
    pub fn line(&self, message: impl AsRef<str>) {
        let message = message.as_ref();
        tracing::info!("{message}");
        if let Err(e) = self.write(message) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the server log");
        }
    }

    fn write(&self, message: &str) -> std::io::Result<()> {
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *slot = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let Some(file) = slot.as_mut() else {
            return Ok(());
        };
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        writeln!(file, "{now} {message}")?;
        if file.metadata()?.len() >= self.rotate_at {
            *slot = None;
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        for n in (1..KEEP).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_four() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ServerLog::at(dir.path().join("server.log"), 200);
        for n in 0..100 {
            log.line(format!("line {n} of the server log"));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        // Four rotated files (the oldest dropped), and the current one unless the last
        // line just rotated it.
        assert!(names.len() == 4 || names.len() == 5, "{names:?}");
        for n in 1..=4 {
            assert!(names.contains(&format!("server.log.{n}")), "{names:?}");
        }
        assert!(!names.contains(&"server.log.5".to_string()));
        log.line("one more");
        assert!(dir.path().join("server.log").exists());
        let newest = std::fs::read_to_string(dir.path().join("server.log.1")).expect("read");
        assert!(newest.len() as u64 >= 200);
    }
}
