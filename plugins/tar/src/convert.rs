//! A decoded tar member turned into the contract's entry, and the tree rules that make a
//! hostile stream harmless: every path under the share, a hard link only to an earlier
//! non-directory, nothing beneath a symlink or any other non-directory.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hoard_plugin_sdk::transport::hoard::plugin::types::{
    DeviceNumber, Entry, EntryKind, Timestamp, Xattr,
};

use crate::header::{Member, MemberKind};
use crate::path::{member_path, parent};

/// Why a member was left out (logged, counted as an error, the job goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// What kind of path an emitted entry was, for the tree rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A directory: entries may go beneath it.
    Directory,
    /// Anything else: nothing may go beneath it; hard links may point to it.
    Other,
}

/// The paths emitted so far, as keyed hashes (the random key makes collisions impossible to
/// arrange from the client; 16 bytes per entry instead of the whole path).
#[derive(Default)]
pub struct Tree {
    state: std::collections::hash_map::RandomState,
    seen: HashMap<u64, Seen>,
}

impl Tree {
    fn key(&self, path: &[u8]) -> u64 {
        self.state.hash_one(path)
    }

    /// What was emitted at `path`.
    pub fn get(&self, path: &[u8]) -> Option<Seen> {
        self.seen.get(&self.key(path)).copied()
    }

    /// Records an emitted entry.
    pub fn insert(&mut self, path: &[u8], seen: Seen) {
        let key = self.key(path);
        self.seen.insert(key, seen);
    }

    /// Refuses a path beneath a non-directory emitted earlier (`a -> /etc`, then `a/passwd`).
    pub fn check_parent(&self, path: &[u8]) -> Result<(), Refused> {
        let mut current = path;
        while let Some(up) = parent(current) {
            if self.get(up) == Some(Seen::Other) {
                return Err(Refused(format!(
                    "{}: beneath {}, which is not a directory",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(up)
                )));
            }
            if self.get(up) == Some(Seen::Directory) {
                return Ok(());
            }
            current = up;
        }
        Ok(())
    }
}

/// The entry for a member at the (already checked) share-relative `path`.
pub fn to_entry(member: &Member, path: Vec<u8>, tree: &Tree) -> Result<Entry, Refused> {
    let shown = || String::from_utf8_lossy(&path).into_owned();
    let kind = match &member.kind {
        MemberKind::File => EntryKind::File,
        MemberKind::Directory => EntryKind::Directory,
        MemberKind::Symlink => EntryKind::Symlink(member.link.clone()),
        MemberKind::Hardlink => {
            let target = member_path(&member.link).map_err(|e| {
                Refused(format!(
                    "{}: hard link to {:?}: {e}",
                    shown(),
                    String::from_utf8_lossy(&member.link)
                ))
            })?;
            if target.is_empty() || tree.get(&target) != Some(Seen::Other) {
                return Err(Refused(format!(
                    "{}: hard link to {:?}, which is not an earlier file of this backup",
                    shown(),
                    String::from_utf8_lossy(&target)
                )));
            }
            EntryKind::Hardlink(target)
        }
        MemberKind::CharDevice(major, minor) => EntryKind::CharDevice(DeviceNumber {
            major: *major,
            minor: *minor,
        }),
        MemberKind::BlockDevice(major, minor) => EntryKind::BlockDevice(DeviceNumber {
            major: *major,
            minor: *minor,
        }),
        MemberKind::Fifo => EntryKind::Fifo,
        other => {
            return Err(Refused(format!(
                "{}: unsupported tar member type {other:?}",
                shown()
            )));
        }
    };
    if path.is_empty() && !matches!(kind, EntryKind::Directory) {
        return Err(Refused(
            "the share root is not a directory in the stream".into(),
        ));
    }
    Ok(Entry {
        path,
        kind,
        mode: member.mode & 0o7777,
        uid: member.uid,
        gid: member.gid,
        user: member.user.clone(),
        group: member.group.clone(),
        mtime: Timestamp {
            seconds: member.mtime.0,
            nanoseconds: member.mtime.1,
        },
        size: if member.kind == MemberKind::File {
            member.size
        } else {
            0
        },
        xattrs: member
            .xattrs
            .iter()
            .map(|(name, value)| Xattr {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &[u8], kind: MemberKind, link: &[u8]) -> Member {
        Member {
            name: name.to_vec(),
            kind,
            link: link.to_vec(),
            mode: 0o1777,
            uid: 1,
            gid: 2,
            user: Some("u".into()),
            group: None,
            mtime: (5, 6),
            data_size: 0,
            size: 0,
            xattrs: vec![],
            sparse: false,
        }
    }

    #[test]
    fn children_of_symlinks_are_refused() {
        let mut tree = Tree::default();
        tree.insert(b"", Seen::Directory);
        tree.insert(b"a", Seen::Other);
        tree.insert(b"d", Seen::Directory);
        assert!(tree.check_parent(b"a/passwd").is_err());
        assert!(tree.check_parent(b"a/x/y").is_err());
        assert!(tree.check_parent(b"d/x").is_ok());
        assert!(tree.check_parent(b"new/x").is_ok());
    }

    #[test]
    fn hard_links_need_an_earlier_file() {
        let mut tree = Tree::default();
        tree.insert(b"f", Seen::Other);
        tree.insert(b"d", Seen::Directory);
        let ok = to_entry(
            &member(b"./l", MemberKind::Hardlink, b"./f"),
            b"l".to_vec(),
            &tree,
        )
        .unwrap();
        assert!(matches!(&ok.kind, EntryKind::Hardlink(t) if t == b"f"));
        for bad in [&b"./d"[..], b"./missing", b"../f", b"/etc/passwd", b"./"] {
            assert!(
                to_entry(
                    &member(b"./l", MemberKind::Hardlink, bad),
                    b"l".to_vec(),
                    &tree
                )
                .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fields_carry_over() {
        let e = to_entry(
            &member(b"./s", MemberKind::Symlink, b"/abs/target"),
            b"s".to_vec(),
            &Tree::default(),
        )
        .unwrap();
        assert!(matches!(&e.kind, EntryKind::Symlink(t) if t == b"/abs/target"));
        assert_eq!(
            (e.mode, e.uid, e.gid, e.mtime.seconds, e.mtime.nanoseconds),
            (0o1777, 1, 2, 5, 6)
        );
        assert!(
            to_entry(
                &member(b"./", MemberKind::File, b""),
                Vec::new(),
                &Tree::default()
            )
            .is_err()
        );
        assert!(
            to_entry(
                &member(b"./x", MemberKind::Other(b'V'), b""),
                b"x".to_vec(),
                &Tree::default()
            )
            .is_err()
        );
    }
}
