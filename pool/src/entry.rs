//! Entry metadata shared by the pool and the plugin contract ([`Entry`] and its parts), and the
//! one path normaliser ([`normalize_path`]) that judges every path a client sends.

use serde::{Deserialize, Serialize};

use crate::error::{BytePath, PathError};

/// A point in time with nanosecond precision; times before 1970 have negative `seconds`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before 1970).
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                if d.subsec_nanos() == 0 {
                    Timestamp {
                        seconds: -(d.as_secs() as i64),
                        nanos: 0,
                    }
                } else {
                    Timestamp {
                        seconds: -(d.as_secs() as i64) - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }
}

/// A device number (of a character or block device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceNumber {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name, e.g. `user.comment` (bytes).
    pub name: Vec<u8>,
    /// Attribute value (bytes).
    pub value: Vec<u8>,
}

/// What kind of file-system object an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file; its content is stored in the pool.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink {
        /// The link target, as stored in the link (bytes, possibly absolute or dangling).
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry of the same snapshot.
    Hardlink {
        /// Normalised path of the entry it links to.
        target: Vec<u8>,
    },
    /// A character device.
    CharDevice(DeviceNumber),
    /// A block device.
    BlockDevice(DeviceNumber),
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

/// One file-system entry with all the metadata of the plugin contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Relative, `/`-separated path; no leading `/`, no `.` or `..` components; `""` is the root.
    pub path: Vec<u8>,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky, without file-type bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name, when the transport knows it.
    pub user: Option<String>,
    /// Group name, when the transport knows it.
    pub group: Option<String>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Size in bytes (for files: the stored content length).
    pub size: u64,
    /// Extended attributes.
    pub xattrs: Vec<Xattr>,
}

impl Entry {
    /// An entry of `kind` at `path` with mode 0o644 (0o755 for directories), root-owned, no
    /// xattrs, size 0 and mtime 0: a starting point for callers and tests.
    pub fn new(path: impl Into<Vec<u8>>, kind: EntryKind) -> Entry {
        let mode = if kind == EntryKind::Directory {
            0o755
        } else {
            0o644
        };
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: Timestamp::default(),
            size: 0,
            xattrs: Vec::new(),
        }
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
}

/// Normalises a path sent by a client: strips a leading `/` or `./`, collapses empty and `.`
/// components, and refuses `..` components and NUL bytes. The result is relative,
/// `/`-separated, and `""` for the root.
pub fn normalize_path(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.contains(&0) {
        return Err(PathError::Nul(BytePath::from(raw)));
    }
    let mut out = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(PathError::ParentComponent(BytePath::from(raw))),
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    Ok(out)
}

/// The parent of a normalised path (`""` for top-level names and for the root).
pub(crate) fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

/// The last component of a normalised path.
pub(crate) fn name_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a directory path and a name.
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if !dir.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// True when `path` is `dir` itself or lies below it.
pub(crate) fn is_within(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

/// The order key of a normalised path: `/` mapped to NUL, so that byte order of keys is
/// depth-first order with every directory's children contiguous and sorted by name.
pub(crate) fn order_key(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// Inverse of [`order_key`].
pub(crate) fn path_of_key(key: &[u8]) -> Vec<u8> {
    key.iter().map(|&b| if b == 0 { b'/' } else { b }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_hostile_and_sloppy_paths() {
        assert_eq!(normalize_path(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(normalize_path(b"./a/b").unwrap(), b"a/b");
        assert_eq!(normalize_path(b"a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize_path(b"").unwrap(), b"");
        assert_eq!(normalize_path(b"/").unwrap(), b"");
        assert_eq!(normalize_path(b"./").unwrap(), b"");
        assert_eq!(normalize_path(b"\xff\xfe/x").unwrap(), b"\xff\xfe/x");
        assert_eq!(normalize_path(b"a/..b").unwrap(), b"a/..b");
        assert!(matches!(
            normalize_path(b"../x"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(
            normalize_path(b"a/../../x"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(
            normalize_path(b"/a/.."),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(normalize_path(b"a\0b"), Err(PathError::Nul(_))));
    }

    #[test]
    fn order_key_is_depth_first() {
        let mut paths: Vec<&[u8]> = vec![b"a.b", b"a/z", b"a", b"a/b/c", b"ab", b"a/b", b""];
        paths.sort_by_key(|p| order_key(p));
        let expected: Vec<&[u8]> = vec![b"", b"a", b"a/b", b"a/b/c", b"a/z", b"a.b", b"ab"];
        assert_eq!(paths, expected);
    }

    #[test]
    fn path_helpers() {
        assert_eq!(parent_of(b"a/b/c"), b"a/b");
        assert_eq!(parent_of(b"a"), b"");
        assert_eq!(name_of(b"a/b/c"), b"c");
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"a", b"x"), b"a/x");
        assert!(is_within(b"a/b", b"a"));
        assert!(is_within(b"a", b"a"));
        assert!(!is_within(b"ab", b"a"));
        assert!(is_within(b"ab", b""));
    }
}
