//! Building entries: paths as bytes, times, modes, without repeating every field.

use crate::transport::hoard::plugin::types::{Entry, EntryKind, Timestamp};

impl Timestamp {
    /// A timestamp from whole seconds and nanoseconds.
    pub fn new(seconds: i64, nanoseconds: u32) -> Self {
        Timestamp {
            seconds,
            nanoseconds,
        }
    }
}

impl Entry {
    /// An entry of `kind` at `path` with mode `0o644` (files) or `0o755` (directories),
    /// owned by root, at the epoch, with no xattrs. Set the other fields as the protocol says.
    pub fn new(path: impl Into<Vec<u8>>, kind: EntryKind) -> Self {
        let mode = match kind {
            EntryKind::Directory => 0o755,
            _ => 0o644,
        };
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: Timestamp::new(0, 0),
            size: 0,
            xattrs: Vec::new(),
        }
    }

    /// A regular file of `size` bytes.
    pub fn file(path: impl Into<Vec<u8>>, size: u64) -> Self {
        Entry {
            size,
            ..Entry::new(path, EntryKind::File)
        }
    }

    /// A directory.
    pub fn directory(path: impl Into<Vec<u8>>) -> Self {
        Entry::new(path, EntryKind::Directory)
    }

    /// The same entry with another mode.
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The same entry with another modification time.
    pub fn with_mtime(mut self, seconds: i64, nanoseconds: u32) -> Self {
        self.mtime = Timestamp::new(seconds, nanoseconds);
        self
    }

    /// Whether `other` has the same metadata: mode, owners (ids and names), modification
    /// time and xattrs (compared as sets). Path, kind and size are not compared.
    pub fn same_metadata(&self, other: &Entry) -> bool {
        self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.user == other.user
            && self.group == other.group
            && self.mtime.seconds == other.mtime.seconds
            && self.mtime.nanoseconds == other.mtime.nanoseconds
            && self.sorted_xattrs() == other.sorted_xattrs()
    }

    /// The xattrs as sorted (name, value) pairs.
    pub fn sorted_xattrs(&self) -> Vec<(&[u8], &[u8])> {
        let mut xattrs: Vec<(&[u8], &[u8])> = self
            .xattrs
            .iter()
            .map(|x| (x.name.as_slice(), x.value.as_slice()))
            .collect();
        xattrs.sort_unstable();
        xattrs
    }
}
