//! Per-host job history: one JSON line per backup attempt or skip, appended to
//! `<pool>/history/HOST.jsonl` and synced, so it survives a crash of the server. A line that
//! does not parse (a torn last line after a power cut) is skipped when reading.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::schedule::Origin;
use crate::schedule::calendar::UnixTime;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobResult {
    /// A complete backup was committed.
    Ok,
    /// A backup was committed but is incomplete (errors, or stopped).
    Partial,
    /// Nothing was committed.
    Failed,
    /// The backup was due but did not run (see `detail`).
    Skipped,
}

/// One line of a host's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The host.
    pub host: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// Who asked for it.
    pub origin: Origin,
    /// When it started (seconds since the epoch).
    pub started: UnixTime,
    /// When it ended.
    pub ended: UnixTime,
    /// How it ended.
    pub result: JobResult,
    /// The backup's number, when one was committed.
    pub number: Option<u64>,
    /// Files in the backup.
    pub files: u64,
    /// Bytes in the backup.
    pub bytes: u64,
    /// Errors the job logged, and why it failed or was skipped.
    pub detail: String,
}

/// The history files of one pool.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// The history beside the pool at `pool_dir`.
    pub fn new(pool_dir: &Path) -> History {
        History {
            dir: pool_dir.join("history"),
        }
    }

    fn path(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.jsonl"))
    }

    /// Appends `record` to its host's history and syncs it.
    pub fn append(&self, record: &JobRecord) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&record.host))?;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// The host's records, oldest first (none when it has no history yet).
    pub fn read(&self, host: &str) -> std::io::Result<Vec<JobRecord>> {
        let file = match std::fs::File::open(self.path(host)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            match serde_json::from_str(&line?) {
                Ok(record) => records.push(record),
                Err(e) => tracing::warn!(host, error = %e, "skipping a damaged history line"),
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = History::new(dir.path());
        let record = JobRecord {
            host: "web".into(),
            kind: "full".into(),
            origin: Origin::Scheduled,
            started: 10,
            ended: 20,
            result: JobResult::Ok,
            number: Some(0),
            files: 3,
            bytes: 4,
            detail: String::new(),
        };
        history.append(&record).expect("append");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("history/web.jsonl"))
            .expect("open");
        file.write_all(b"{\"host\":\"web\",\"ki").expect("torn");
        drop(file);
        assert_eq!(history.read("web").expect("read"), vec![record]);
        assert!(history.read("other").expect("read").is_empty());
    }
}
