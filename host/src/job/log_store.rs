//! Job logs kept beside the pool: `logs/HOST/N.jsonl` for backup N, and
//! `logs/HOST/failed-TIME.jsonl` for a backup that recorded nothing. One JSON line per log
//! line, written atomically.

use std::path::{Path, PathBuf};

use crate::plugin::state::LogLine;

/// Where job logs live.
#[derive(Debug, Clone)]
pub struct JobLogStore {
    dir: PathBuf,
}

impl JobLogStore {
    /// The log store of the pool at `pool_dir`.
    pub fn new(pool_dir: &Path) -> Self {
        Self {
            dir: pool_dir.join("logs"),
        }
    }

    fn path(&self, host: &str, number: u64) -> PathBuf {
        self.dir.join(host).join(format!("{number}.jsonl"))
    }

    /// Saves the log of backup `number` of `host` (or of a failed one, when `None`).
    pub fn save(
        &self,
        host: &str,
        number: Option<u64>,
        lines: &[LogLine],
    ) -> std::io::Result<PathBuf> {
        let path = match number {
            Some(n) => self.path(host, n),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                self.dir.join(host).join(format!("failed-{now}.jsonl"))
            }
        };
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut text = String::new();
        for line in lines {
            text.push_str(&serde_json::to_string(line).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// The log of backup `number` of `host`.
    pub fn load(&self, host: &str, number: u64) -> std::io::Result<Vec<LogLine>> {
        let text = std::fs::read_to_string(self.path(host, number))?;
        text.lines()
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}
