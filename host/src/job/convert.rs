//! The one mapping between the contract's entry type (WIT bindings) and the pool's entry
//! type. Paths are not judged here: the pool's `normalize_path` does that, once, when an
//! entry is stored or looked up.

use hoard_pool as pool;

use crate::plugin::bindings as wit;

/// A plugin's entry as the pool stores it.
pub fn to_pool(entry: wit::Entry) -> pool::Entry {
    pool::Entry {
        path: entry.path,
        kind: match entry.kind {
            wit::EntryKind::File => pool::EntryKind::File,
            wit::EntryKind::Directory => pool::EntryKind::Directory,
            wit::EntryKind::Symlink(target) => pool::EntryKind::Symlink { target },
            wit::EntryKind::Hardlink(target) => pool::EntryKind::Hardlink { target },
            wit::EntryKind::CharDevice(d) => pool::EntryKind::CharDevice(device_to_pool(d)),
            wit::EntryKind::BlockDevice(d) => pool::EntryKind::BlockDevice(device_to_pool(d)),
            wit::EntryKind::Fifo => pool::EntryKind::Fifo,
            wit::EntryKind::Socket => pool::EntryKind::Socket,
        },
        mode: entry.mode & 0o7777,
        uid: entry.uid,
        gid: entry.gid,
        user: entry.user,
        group: entry.group,
        mtime: pool::Timestamp {
            seconds: entry.mtime.seconds,
            nanos: entry.mtime.nanoseconds.min(999_999_999),
        },
        size: entry.size,
        xattrs: entry
            .xattrs
            .into_iter()
            .map(|x| pool::Xattr {
                name: x.name,
                value: x.value,
            })
            .collect(),
    }
}

/// A stored entry as a plugin sees it.
pub fn to_wit(entry: pool::Entry) -> wit::Entry {
    wit::Entry {
        path: entry.path,
        kind: match entry.kind {
            pool::EntryKind::File => wit::EntryKind::File,
            pool::EntryKind::Directory => wit::EntryKind::Directory,
            pool::EntryKind::Symlink { target } => wit::EntryKind::Symlink(target),
            pool::EntryKind::Hardlink { target } => wit::EntryKind::Hardlink(target),
            pool::EntryKind::CharDevice(d) => wit::EntryKind::CharDevice(device_to_wit(d)),
            pool::EntryKind::BlockDevice(d) => wit::EntryKind::BlockDevice(device_to_wit(d)),
            pool::EntryKind::Fifo => wit::EntryKind::Fifo,
            pool::EntryKind::Socket => wit::EntryKind::Socket,
        },
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        user: entry.user,
        group: entry.group,
        mtime: wit::Timestamp {
            seconds: entry.mtime.seconds,
            nanoseconds: entry.mtime.nanos,
        },
        size: entry.size,
        xattrs: entry
            .xattrs
            .into_iter()
            .map(|x| wit::Xattr {
                name: x.name,
                value: x.value,
            })
            .collect(),
    }
}

fn device_to_pool(d: wit::DeviceNumber) -> pool::DeviceNumber {
    pool::DeviceNumber {
        major: d.major,
        minor: d.minor,
    }
}

fn device_to_wit(d: pool::DeviceNumber) -> wit::DeviceNumber {
    wit::DeviceNumber {
        major: d.major,
        minor: d.minor,
    }
}
