//! Snapshots: their identity and metadata ([`SnapshotId`], [`SnapshotInfo`]), building one
//! ([`SnapshotWriter`]), reading one ([`SnapshotReader`]) and the catalog that commits them.

mod builder;
pub(crate) mod catalog;
mod reader;
mod writer;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use reader::{FileReader, SnapshotReader, Walk};
pub use writer::{FileSummary, FileWriter, SnapshotWriter};

use crate::entry::Timestamp;
use crate::tree::Node;

/// Names a snapshot: the host and its number (numbers grow per host and are never reused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotId {
    /// The host backed up.
    pub host: String,
    /// The snapshot's number for that host (the first is 0).
    pub number: u64,
}

impl SnapshotId {
    /// A snapshot id.
    pub fn new(host: impl Into<String>, number: u64) -> SnapshotId {
        SnapshotId {
            host: host.into(),
            number,
        }
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.number)
    }
}

/// Full or incremental backup (the pool stores both as complete trees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackupType {
    /// Every file was read from the client.
    Full,
    /// Only changed files were read; the rest kept from the reference.
    Incremental,
}

/// Metadata of a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Host and number.
    pub id: SnapshotId,
    /// Full or incremental.
    pub backup_type: BackupType,
    /// When the writer was started.
    pub started: Timestamp,
    /// When the backup ended (as given at commit).
    pub ended: Timestamp,
    /// Regular files in the snapshot.
    pub file_count: u64,
    /// Entries of every kind (root excluded).
    pub entry_count: u64,
    /// Bytes of regular files (logical size of the snapshot).
    pub bytes: u64,
    /// Plain bytes of file content this snapshot added to the pool.
    pub new_bytes: u64,
    /// Bytes this snapshot added to pack files (compressed, directory objects included).
    pub new_stored_bytes: u64,
    /// Errors the backup reported.
    pub errors: u64,
    /// Retention must keep this snapshot.
    pub keep: bool,
    /// Free text.
    pub comment: String,
    /// The backup did not finish (the snapshot holds what was received).
    pub partial: bool,
    /// Number of the reference snapshot (same host) it was built against, if any.
    pub reference: Option<u64>,
}

/// What the caller knows at commit time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// End time; `None` means now.
    pub ended: Option<Timestamp>,
    /// Errors the backup met.
    pub errors: u64,
    /// The backup did not finish.
    pub partial: bool,
    /// Free text.
    pub comment: String,
    /// Keep flag.
    pub keep: bool,
}

/// A catalog record: the info and the root directory node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub info: SnapshotInfo,
    pub root: Node,
}
