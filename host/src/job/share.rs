//! One share inside a host's snapshot. A snapshot mirrors the client's paths: the share
//! `/home` lives at `home/` in it, the share `/` at its root. A plugin only ever sees paths
//! relative to its share; these wrappers add the share's prefix on the way in and take it
//! off on the way out.

use std::io::Read;
use std::sync::Arc;

use crate::plugin::bindings::{Entry, EntryKind};
use crate::plugin::imports::sink::{BackupSink, SinkError};
use crate::plugin::imports::snapshot::{EntryIter, SnapshotSource, SourceError};

/// The prefix of a share inside a snapshot: its path without the leading and trailing `/`.
pub fn share_prefix(share: &[u8]) -> Vec<u8> {
    let mut start = 0;
    let mut end = share.len();
    while start < end && share[start] == b'/' {
        start += 1;
    }
    while end > start && share[end - 1] == b'/' {
        end -= 1;
    }
    share[start..end].to_vec()
}

fn join(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_vec(),
        (false, true) => prefix.to_vec(),
        (false, false) => {
            let mut joined = Vec::with_capacity(prefix.len() + 1 + path.len());
            joined.extend_from_slice(prefix);
            joined.push(b'/');
            joined.extend_from_slice(path);
            joined
        }
    }
}

/// `path` relative to `prefix`, if it is inside it (`prefix` itself gives the empty path);
/// the one place a snapshot path is made relative to a subtree.
pub fn relative_to<'a>(prefix: &[u8], path: &'a [u8]) -> Option<&'a [u8]> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(b"/")
    }
}

fn entry_into(prefix: &[u8], mut entry: Entry) -> Entry {
    entry.path = join(prefix, &entry.path);
    if let EntryKind::Hardlink(target) = &mut entry.kind {
        *target = join(prefix, target);
    }
    entry
}

fn entry_out_of(prefix: &[u8], mut entry: Entry) -> Option<Entry> {
    entry.path = relative_to(prefix, &entry.path)?.to_vec();
    if let EntryKind::Hardlink(target) = &mut entry.kind {
        *target = relative_to(prefix, target)?.to_vec();
    }
    Some(entry)
}

/// A sink that stores a share's entries under its prefix.
pub struct ShareSink {
    prefix: Vec<u8>,
    inner: Box<dyn BackupSink>,
}

impl ShareSink {
    /// Wraps `inner` for the share `share`.
    pub fn new(share: &[u8], inner: Box<dyn BackupSink>) -> Self {
        Self {
            prefix: share_prefix(share),
            inner,
        }
    }

    /// The wrapped sink.
    pub fn into_inner(self) -> Box<dyn BackupSink> {
        self.inner
    }
}

impl BackupSink for ShareSink {
    fn add(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.inner.add(entry_into(&self.prefix, entry))
    }

    fn begin_file(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.inner.begin_file(entry_into(&self.prefix, entry))
    }

    fn write(&mut self, data: Vec<u8>) -> Result<(), SinkError> {
        self.inner.write(data)
    }

    fn finish_file(&mut self, size: u64) -> Result<(), SinkError> {
        self.inner.finish_file(size)
    }

    fn abandon_file(&mut self) {
        self.inner.abandon_file();
    }

    fn keep(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.inner.keep(entry_into(&self.prefix, entry))
    }

    fn keep_tree(&mut self, path: &[u8]) -> Result<(), SinkError> {
        self.inner.keep_tree(&join(&self.prefix, path))
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// A snapshot seen from inside one share.
pub struct ShareSource {
    prefix: Vec<u8>,
    /// Where a walk of the empty path starts (a restore of part of the share).
    walk_root: Vec<u8>,
    inner: Arc<dyn SnapshotSource>,
}

impl ShareSource {
    /// Wraps `inner` for the share `share`.
    pub fn new(share: &[u8], inner: Arc<dyn SnapshotSource>) -> Self {
        Self {
            prefix: share_prefix(share),
            walk_root: Vec::new(),
            inner,
        }
    }

    /// The same view, where walking the empty path walks `source` (share-relative).
    pub fn walking_from(mut self, source: &[u8]) -> Self {
        self.walk_root = source.to_vec();
        self
    }
}

impl SnapshotSource for ShareSource {
    fn lookup(&self, path: &[u8]) -> Result<Option<Entry>, SourceError> {
        Ok(self
            .inner
            .lookup(&join(&self.prefix, path))?
            .and_then(|e| entry_out_of(&self.prefix, e)))
    }

    fn list_directory(&self, path: &[u8]) -> Result<Vec<Entry>, SourceError> {
        Ok(self
            .inner
            .list_directory(&join(&self.prefix, path))?
            .into_iter()
            .filter_map(|e| entry_out_of(&self.prefix, e))
            .collect())
    }

    fn walk(&self, path: &[u8]) -> Result<EntryIter, SourceError> {
        let prefix = self.prefix.clone();
        let start = if path.is_empty() {
            &self.walk_root[..]
        } else {
            path
        };
        let walk = self.inner.walk(&join(&self.prefix, start))?;
        Ok(Box::new(walk.filter_map(move |e| match e {
            Ok(entry) => entry_out_of(&prefix, entry).map(Ok),
            Err(e) => Some(Err(e)),
        })))
    }

    fn open(&self, path: &[u8], offset: u64) -> Result<Box<dyn Read + Send>, SourceError> {
        self.inner.open(&join(&self.prefix, path), offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(share_prefix(b"/"), b"");
        assert_eq!(share_prefix(b"/home/"), b"home");
        assert_eq!(share_prefix(b"C$"), b"C$");
        assert_eq!(join(b"home", b""), b"home");
        assert_eq!(join(b"home", b"a/b"), b"home/a/b");
        assert_eq!(relative_to(b"home", b"home/a"), Some(&b"a"[..]));
        assert_eq!(relative_to(b"home", b"homes/a"), None);
        assert_eq!(relative_to(b"home", b"home"), Some(&b""[..]));
    }
}
