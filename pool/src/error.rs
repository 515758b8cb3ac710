//! Errors of the pool: one enum, [`PoolError`], whose variants name the path, object, pack or
//! snapshot involved, plus [`PathError`] for paths refused by [`crate::normalize_path`].

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::object::ObjectId;
use crate::pack::PackId;
use crate::snapshot::SnapshotId;

/// A byte path (not necessarily UTF-8), displayed with non-printable bytes escaped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BytePath(pub Vec<u8>);

impl fmt::Display for BytePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        write!(f, "{}", self.0.escape_ascii())
    }
}

impl fmt::Debug for BytePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl From<&[u8]> for BytePath {
    fn from(value: &[u8]) -> Self {
        BytePath(value.to_vec())
    }
}

/// Why a path from a client was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path contains a NUL byte.
    #[error("path {0} contains a NUL byte")]
    Nul(BytePath),
    /// The path contains a `..` component.
    #[error("path {0} has a '..' component")]
    ParentComponent(BytePath),
}

/// Everything that can go wrong in the pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing pack", "opening index", ...).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The disk (or an injected limit) is full; nothing committed was harmed.
    #[error("disk full while {op} {}: {source}", path.display())]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The index database reported an error.
    #[error("index database: {op}: {detail}")]
    Index {
        /// What was being done.
        op: &'static str,
        /// The database's message.
        detail: String,
    },
    /// Another process holds the pool open.
    #[error("pool at {} is already open in another process", path.display())]
    Locked {
        /// The pool directory.
        path: PathBuf,
    },
    /// The directory is not a pool (or of an unknown format version).
    #[error("{} is not a hoard pool: {detail}", path.display())]
    NotAPool {
        /// The pool directory.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `Pool::create` found an existing pool.
    #[error("a pool already exists at {}", path.display())]
    AlreadyExists {
        /// The pool directory.
        path: PathBuf,
    },
    /// An object's bytes do not hash to its id (or cannot be decoded).
    #[error("object {id} is corrupt (pack {pack}, offset {offset}): {detail}")]
    CorruptObject {
        /// The object.
        id: ObjectId,
        /// The pack holding it.
        pack: PackId,
        /// Offset of its record in the pack.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// An object referenced by a tree or snapshot is not in the index.
    #[error("object {id} is missing from the pool")]
    MissingObject {
        /// The object.
        id: ObjectId,
    },
    /// A directory object hashed correctly but does not decode.
    #[error("directory object {id} cannot be decoded: {detail}")]
    CorruptTree {
        /// The directory object.
        id: ObjectId,
        /// The decoder's message.
        detail: String,
    },
    /// A catalog record cannot be decoded.
    #[error("catalog record of snapshot {id} cannot be decoded: {detail}")]
    CorruptCatalog {
        /// The snapshot.
        id: SnapshotId,
        /// The decoder's message.
        detail: String,
    },
    /// No such snapshot.
    #[error("snapshot {id} not found")]
    SnapshotNotFound {
        /// The snapshot asked for.
        id: SnapshotId,
    },
    /// No such path in the snapshot.
    #[error("{path} not found in snapshot {snapshot}")]
    PathNotFound {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The path asked for.
        path: BytePath,
    },
    /// The path is not a directory.
    #[error("{path} in snapshot {snapshot} is not a directory")]
    NotADirectory {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The path.
        path: BytePath,
    },
    /// The path is not a regular file (nor a hardlink to one).
    #[error("{path} in snapshot {snapshot} is not a regular file")]
    NotAFile {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The path.
        path: BytePath,
    },
    /// A hardlink could not be resolved to a regular file.
    #[error("hardlink {path} in snapshot {snapshot}: {detail}")]
    BadHardlink {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The link.
        path: BytePath,
        /// What is wrong.
        detail: String,
    },
    /// `keep`/`keep_tree` named something the reference snapshot lacks (or has as another kind).
    #[error("keep of {path}: {detail}")]
    NotInReference {
        /// The path to keep.
        path: BytePath,
        /// What is wrong ("no reference snapshot", "not in reference ...", ...).
        detail: String,
    },
    /// A path from a client was refused.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// A host name was refused.
    #[error("invalid host name {host:?}: {detail}")]
    InvalidHost {
        /// The name.
        host: String,
        /// Why.
        detail: &'static str,
    },
    /// An earlier error broke this snapshot writer; drop it (the snapshot is abandoned).
    #[error("snapshot writer for host {host} failed earlier and cannot continue")]
    WriterFailed {
        /// The host being backed up.
        host: String,
    },
    /// The options given are unusable.
    #[error("invalid pool options: {0}")]
    InvalidOptions(String),
}

impl PoolError {
    /// Wraps an I/O error, classifying "no space left" as [`PoolError::DiskFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> PoolError {
        let path = path.into();
        let full = source.kind() == io::ErrorKind::StorageFull
            || source.kind() == io::ErrorKind::QuotaExceeded
            || source.raw_os_error() == Some(28);
        if full {
            PoolError::DiskFull { op, path, source }
        } else {
            PoolError::Io { op, path, source }
        }
    }

    /// Wraps an error of the index database.
    pub(crate) fn index(op: &'static str, err: impl fmt::Display) -> PoolError {
        PoolError::Index {
            op,
            detail: err.to_string(),
        }
    }

    /// True when the error is a full disk (real or injected).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, PoolError::DiskFull { .. })
    }
}

/// Converts a pool error for `std::io` interfaces (`Write`, `Read`), keeping it as the source.
pub(crate) fn to_io(err: PoolError) -> io::Error {
    match err {
        PoolError::DiskFull { ref source, .. } => io::Error::new(source.kind(), err),
        other => io::Error::other(other),
    }
}
