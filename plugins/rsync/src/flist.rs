//! The file list: decoding the sender's entries (each field sent only when it differs from
//! the previous entry), the owner and group name lists that follow, hard-link groups, and
//! rsync's sort order (the indexes both sides exchange point into the sorted list).
//!
//! Every name is checked as it arrives: no `..`, not absolute, no NUL, at most
//! [`MAX_PATH`] bytes; a list longer than [`MAX_ENTRIES`] is refused.

use std::collections::HashMap;

use crate::error::{Error, protocol};
use crate::wire::{Source, read_bytes, read_i32, read_longint, read_u8, read_varint, read_varlong};

/// Longest path accepted (rsync's MAXPATHLEN).
pub const MAX_PATH: usize = 4096;
/// Most entries accepted in one file list.
pub const MAX_ENTRIES: usize = 20_000_000;
/// Most xattrs of one entry.
const MAX_XATTRS: usize = 10_000;

// Transmission flags (rsync.h).
const XMIT_SAME_MODE: u32 = 1 << 1;
const XMIT_EXTENDED_FLAGS: u32 = 1 << 2;
const XMIT_SAME_UID: u32 = 1 << 3;
const XMIT_SAME_GID: u32 = 1 << 4;
const XMIT_SAME_NAME: u32 = 1 << 5;
const XMIT_LONG_NAME: u32 = 1 << 6;
const XMIT_SAME_TIME: u32 = 1 << 7;
const XMIT_SAME_RDEV_MAJOR: u32 = 1 << 8;
const XMIT_HLINKED: u32 = 1 << 9;
const XMIT_SAME_DEV_PRE30: u32 = 1 << 10;
const XMIT_USER_NAME_FOLLOWS: u32 = 1 << 10;
const XMIT_RDEV_MINOR_8_PRE30: u32 = 1 << 11;
const XMIT_GROUP_NAME_FOLLOWS: u32 = 1 << 11;
const XMIT_HLINK_FIRST: u32 = 1 << 12;
const XMIT_IO_ERROR_ENDLIST: u32 = 1 << 12;
const XMIT_MOD_NSEC: u32 = 1 << 13;

/// File type bits of a mode as rsync sends it (the Linux values).
pub const S_IFMT: u32 = 0o170000;
/// A directory.
pub const S_IFDIR: u32 = 0o040000;
/// A regular file.
pub const S_IFREG: u32 = 0o100000;
/// A symlink.
pub const S_IFLNK: u32 = 0o120000;
/// A character device.
pub const S_IFCHR: u32 = 0o020000;
/// A block device.
pub const S_IFBLK: u32 = 0o060000;
/// A fifo.
pub const S_IFIFO: u32 = 0o010000;
/// A socket.
pub const S_IFSOCK: u32 = 0o140000;

/// What the file list carries, from the options both sides agreed on.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    /// The protocol in use.
    pub protocol: i32,
    /// Flags are varints and the list ends with an error code (protocol 31's `v`).
    pub varint_flags: bool,
    /// The list may end with `XMIT_IO_ERROR_ENDLIST` (safe file lists).
    pub safe_flist: bool,
    /// Owners (`-o`) and groups (`-g`) are sent.
    pub owners: bool,
    /// Devices and specials (`-D`) carry device numbers.
    pub devices: bool,
    /// Symlinks (`-l`) carry targets.
    pub links: bool,
    /// Hard links (`-H`).
    pub hard_links: bool,
    /// Extended attributes (`-X`).
    pub xattrs: bool,
    /// Names of owners and groups follow the list (no `--numeric-ids`).
    pub id_names: bool,
}

/// One entry of the file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The path relative to the transfer root (`.` is the root itself).
    pub name: Vec<u8>,
    /// Type and permission bits.
    pub mode: u32,
    /// Size of a regular file (or symlink target length).
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Device number (major, minor) of devices.
    pub rdev: Option<(u32, u32)>,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
    /// For a hard-linked file: the index (in arrival order) of the first of its group.
    pub hardlink_leader: Option<usize>,
    /// Extended attributes (name, value); values longer than [`MAX_FULL_DATUM`] arrive as
    /// their checksum and are marked in `abbreviated`.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Indexes in `xattrs` whose value is only a checksum.
    pub abbreviated: Vec<usize>,
}

impl FileEntry {
    /// An entry with a name and a mode, everything else empty.
    pub fn new(name: Vec<u8>, mode: u32) -> Self {
        FileEntry {
            name,
            mode,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            uid: 0,
            gid: 0,
            rdev: None,
            target: None,
            hardlink_leader: None,
            xattrs: Vec::new(),
            abbreviated: Vec::new(),
        }
    }

    /// The file type bits.
    pub fn kind(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == S_IFDIR
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == S_IFREG
    }

    /// The share-relative path of the contract (`.` becomes the empty path).
    pub fn share_path(&self) -> Vec<u8> {
        if self.name == b"." {
            Vec::new()
        } else {
            self.name.strip_prefix(b"./").unwrap_or(&self.name).to_vec()
        }
    }
}

/// The whole list as received: entries in arrival order, the sorted order the indexes use,
/// the owner and group names, and the error code the sender ended it with.
#[derive(Debug, Default)]
pub struct FileList {
    /// Entries in arrival order.
    pub entries: Vec<FileEntry>,
    /// `sorted[ndx]` is the arrival index of the entry the file index `ndx` names.
    pub sorted: Vec<usize>,
    /// Owner names by id.
    pub users: HashMap<u32, String>,
    /// Group names by id.
    pub groups: HashMap<u32, String>,
    /// The sender's I/O error flags (some files could not be read).
    pub io_error: i32,
}

impl FileList {
    /// The entry file index `ndx` names.
    pub fn by_ndx(&self, ndx: i32) -> Option<&FileEntry> {
        let i = usize::try_from(ndx).ok()?;
        self.sorted.get(i).and_then(|&a| self.entries.get(a))
    }
}

/// The fields an entry inherits from the previous one.
#[derive(Default)]
struct Previous {
    name: Vec<u8>,
    mode: u32,
    mtime: i64,
    uid: u32,
    gid: u32,
    rdev_major: u32,
    dev: i64,
}

/// Reads the file list up to its end marker, then the id lists (and, before protocol 30,
/// the I/O error flag), and sorts it.
pub fn read_file_list<S: Source + ?Sized>(
    src: &mut S,
    options: &ListOptions,
) -> Result<FileList, Error> {
    let mut list = FileList::default();
    let mut prev = Previous::default();
    let mut inodes: HashMap<(i64, i64), usize> = HashMap::new();
    let mut sets = Vec::new();
    loop {
        let flags = if options.varint_flags {
            let flags = read_varint(src)? as u32;
            if flags == 0 {
                list.io_error = read_varint(src)?;
                break;
            }
            flags
        } else {
            let mut flags = u32::from(read_u8(src)?);
            if flags == 0 {
                break;
            }
            if options.protocol >= 28 && flags & XMIT_EXTENDED_FLAGS != 0 {
                flags |= u32::from(read_u8(src)?) << 8;
            }
            if flags == XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST {
                if !options.safe_flist && options.protocol < 31 {
                    return Err(protocol(format!("invalid file-list flags {flags:#x}")));
                }
                list.io_error = read_varint(src)?;
                break;
            }
            flags
        };
        if list.entries.len() >= MAX_ENTRIES {
            return Err(protocol(format!(
                "the file list has more than {MAX_ENTRIES} entries"
            )));
        }
        let entry = read_entry(
            src,
            options,
            flags,
            &mut prev,
            &list,
            &mut inodes,
            &mut sets,
        )?;
        list.entries.push(entry);
    }
    if options.owners && options.id_names {
        read_id_names(src, options, &mut list.users)?;
        read_id_names(src, options, &mut list.groups)?;
    }
    if options.protocol < 30 {
        list.io_error = read_i32(src)?;
    }
    list.sorted = sort_order(&list.entries);
    Ok(list)
}

fn read_varint30<S: Source + ?Sized>(src: &mut S, protocol: i32) -> Result<i32, Error> {
    if protocol < 30 {
        read_i32(src)
    } else {
        read_varint(src)
    }
}

fn read_varlong30<S: Source + ?Sized>(
    src: &mut S,
    protocol: i32,
    min: usize,
) -> Result<i64, Error> {
    if protocol < 30 {
        read_longint(src)
    } else {
        read_varlong(src, min)
    }
}

fn read_entry<S: Source + ?Sized>(
    src: &mut S,
    options: &ListOptions,
    flags: u32,
    prev: &mut Previous,
    list: &FileList,
    inodes: &mut HashMap<(i64, i64), usize>,
    sets: &mut Vec<XattrSet>,
) -> Result<FileEntry, Error> {
    let protocol_version = options.protocol;
    let same = if flags & XMIT_SAME_NAME != 0 {
        usize::from(read_u8(src)?)
    } else {
        0
    };
    let rest_len = if flags & XMIT_LONG_NAME != 0 {
        usize::try_from(read_varint30(src, protocol_version)?)
            .map_err(|_| protocol("negative name length"))?
    } else {
        usize::from(read_u8(src)?)
    };
    if same > prev.name.len() || same + rest_len >= MAX_PATH {
        return Err(protocol(format!(
            "file-list name too long or inconsistent ({same} + {rest_len} bytes)"
        )));
    }
    let mut name = prev.name[..same].to_vec();
    name.extend(read_bytes(src, rest_len, MAX_PATH)?);
    check_name(&name)?;
    prev.name.clone_from(&name);

    let mut entry = FileEntry::new(name, 0);

    if protocol_version >= 30 && flags & XMIT_HLINKED != 0 && flags & XMIT_HLINK_FIRST == 0 {
        let first =
            usize::try_from(read_varint(src)?).map_err(|_| protocol("negative hard-link index"))?;
        let Some(leader) = list.entries.get(first) else {
            return Err(protocol(format!(
                "hard-link reference {first} out of range ({} entries so far)",
                list.entries.len()
            )));
        };
        entry.mode = leader.mode;
        entry.size = leader.size;
        entry.mtime = leader.mtime;
        entry.mtime_nsec = leader.mtime_nsec;
        entry.uid = leader.uid;
        entry.gid = leader.gid;
        entry.rdev = leader.rdev;
        entry.target.clone_from(&leader.target);
        entry.hardlink_leader = Some(leader.hardlink_leader.unwrap_or(first));
        prev.mode = leader.mode;
        prev.mtime = leader.mtime;
        prev.uid = leader.uid;
        prev.gid = leader.gid;
        if let Some((major, _)) = leader.rdev {
            prev.rdev_major = major;
        }
        if options.xattrs {
            read_xattrs(src, &mut entry, sets)?;
        }
        return Ok(entry);
    }

    let size = read_varlong30(src, protocol_version, 3)?;
    entry.size = u64::try_from(size).map_err(|_| protocol("negative file length"))?;
    if flags & XMIT_SAME_TIME == 0 {
        prev.mtime = if protocol_version >= 30 {
            read_varlong(src, 4)?
        } else {
            i64::from(read_i32(src)? as u32)
        };
    }
    entry.mtime = prev.mtime;
    if flags & XMIT_MOD_NSEC != 0 {
        let nsec = read_varint(src)?;
        entry.mtime_nsec = u32::try_from(nsec)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .ok_or_else(|| protocol(format!("bad nanoseconds {nsec}")))?;
    }
    if flags & XMIT_SAME_MODE == 0 {
        prev.mode = read_i32(src)? as u32;
    }
    entry.mode = prev.mode;
    if options.owners {
        if flags & XMIT_SAME_UID == 0 {
            prev.uid = read_varint30(src, protocol_version)? as u32;
            if protocol_version >= 30 && flags & XMIT_USER_NAME_FOLLOWS != 0 {
                let len = usize::from(read_u8(src)?);
                let _name = read_bytes(src, len, 255)?;
            }
        }
        if flags & XMIT_SAME_GID == 0 {
            prev.gid = read_varint30(src, protocol_version)? as u32;
            if protocol_version >= 30 && flags & XMIT_GROUP_NAME_FOLLOWS != 0 {
                let len = usize::from(read_u8(src)?);
                let _name = read_bytes(src, len, 255)?;
            }
        }
        entry.uid = prev.uid;
        entry.gid = prev.gid;
    }
    let kind = entry.kind();
    let is_device = kind == S_IFCHR || kind == S_IFBLK;
    let is_special = kind == S_IFIFO || kind == S_IFSOCK;
    if options.devices && (is_device || (is_special && protocol_version < 31)) {
        if flags & XMIT_SAME_RDEV_MAJOR == 0 {
            prev.rdev_major = read_varint30(src, protocol_version)? as u32;
        }
        let minor = if protocol_version >= 30 {
            read_varint(src)? as u32
        } else if flags & XMIT_RDEV_MINOR_8_PRE30 != 0 {
            u32::from(read_u8(src)?)
        } else {
            read_i32(src)? as u32
        };
        if is_device {
            entry.rdev = Some((prev.rdev_major, minor));
        }
        entry.size = 0;
    }
    if options.links && kind == S_IFLNK {
        let len = usize::try_from(read_varint30(src, protocol_version)?)
            .map_err(|_| protocol("negative symlink length"))?;
        if len == 0 || len >= MAX_PATH {
            return Err(protocol(format!("symlink target of {len} bytes")));
        }
        let target = read_bytes(src, len, MAX_PATH)?;
        if target.contains(&0) {
            return Err(protocol("NUL byte in a symlink target"));
        }
        entry.target = Some(target);
    }
    if options.hard_links && flags & XMIT_HLINKED != 0 && protocol_version < 30 {
        if flags & XMIT_SAME_DEV_PRE30 == 0 {
            prev.dev = read_longint(src)?;
        }
        let ino = read_longint(src)?;
        let here = list.entries.len();
        match inodes.get(&(prev.dev, ino)) {
            Some(&leader) => entry.hardlink_leader = Some(leader),
            None => {
                inodes.insert((prev.dev, ino), here);
            }
        }
    }
    if options.xattrs {
        read_xattrs(src, &mut entry, sets)?;
    }
    Ok(entry)
}

/// `receive_xattr`: the index of a set sent before (plus one), or zero and a new set. Names
/// arrive whole (`user.x`, `security.y`) and end with a NUL; values longer than
/// [`MAX_FULL_DATUM`] arrive as their checksum only.
fn read_xattrs<S: Source + ?Sized>(
    src: &mut S,
    entry: &mut FileEntry,
    sets: &mut Vec<XattrSet>,
) -> Result<(), Error> {
    let ndx = read_varint(src)?;
    if ndx != 0 {
        let set = ndx
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| sets.get(i))
            .ok_or_else(|| protocol(format!("xattr set {ndx} out of range")))?;
        entry.xattrs.clone_from(&set.values);
        entry.abbreviated.clone_from(&set.abbreviated);
        return Ok(());
    }
    let count = usize::try_from(read_varint(src)?).map_err(|_| protocol("negative xattr count"))?;
    if count > MAX_XATTRS {
        return Err(protocol(format!("{count} xattrs on one entry")));
    }
    let mut set = XattrSet::default();
    for i in 0..count {
        let name_len = usize::try_from(read_varint(src)?)
            .map_err(|_| protocol("negative xattr name length"))?;
        let datum_len = usize::try_from(read_varint(src)?)
            .map_err(|_| protocol("negative xattr value length"))?;
        let mut name = read_bytes(src, name_len, 4096)?;
        if name.pop() != Some(0) {
            return Err(protocol("an xattr name without its trailing NUL"));
        }
        let value = if datum_len > MAX_FULL_DATUM {
            set.abbreviated.push(i);
            read_bytes(src, XATTR_SUM_LEN, XATTR_SUM_LEN)?
        } else {
            read_bytes(src, datum_len, MAX_FULL_DATUM)?
        };
        set.values.push((name, value));
    }
    entry.xattrs.clone_from(&set.values);
    entry.abbreviated.clone_from(&set.abbreviated);
    sets.push(set);
    Ok(())
}

/// One set of xattrs as sent, which later entries may name by index.
#[derive(Debug, Clone, Default)]
pub struct XattrSet {
    values: Vec<(Vec<u8>, Vec<u8>)>,
    abbreviated: Vec<usize>,
}

/// Values longer than this arrive as their checksum (`MAX_FULL_DATUM`).
pub const MAX_FULL_DATUM: usize = 32;
/// The length of an abbreviated xattr value's checksum (MD5).
pub const XATTR_SUM_LEN: usize = 16;

fn read_id_names<S: Source + ?Sized>(
    src: &mut S,
    options: &ListOptions,
    names: &mut HashMap<u32, String>,
) -> Result<(), Error> {
    for _ in 0..1_000_000 {
        let id = read_varint30(src, options.protocol)?;
        if id == 0 {
            return Ok(());
        }
        let len = usize::from(read_u8(src)?);
        let name = read_bytes(src, len, 255)?;
        names.insert(id as u32, String::from_utf8_lossy(&name).into_owned());
    }
    Err(protocol("an id list without end"))
}

/// Refuses names that would leave the transfer root.
fn check_name(name: &[u8]) -> Result<(), Error> {
    if name.is_empty() {
        return Err(protocol("an empty name in the file list"));
    }
    if name.first() == Some(&b'/') {
        return Err(protocol(format!(
            "absolute name in the file list: {}",
            String::from_utf8_lossy(name)
        )));
    }
    if name.contains(&0) {
        return Err(protocol("NUL byte in a file-list name"));
    }
    if name.split(|b| *b == b'/').any(|c| c == b"..") {
        return Err(protocol(format!(
            "`..` in a file-list name: {}",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// One component of a sort key: non-directories sort before directories at each level, and
/// a directory's name is compared with a `/` after it (rsync's `f_name_cmp`, protocol 29+).
fn sort_key(entry: &FileEntry) -> Vec<(bool, Vec<u8>)> {
    let path = entry.share_path();
    if path.is_empty() {
        return Vec::new();
    }
    let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let dir = i < last || entry.is_dir();
            let mut name = part.to_vec();
            if dir {
                name.push(b'/');
            }
            (dir, name)
        })
        .collect()
}

/// The sorted order of the list: `result[ndx]` is an arrival index.
pub fn sort_order<'a>(entries: impl IntoIterator<Item = &'a FileEntry>) -> Vec<usize> {
    let keys: Vec<Vec<(bool, Vec<u8>)>> = entries.into_iter().map(sort_key).collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, mode: u32) -> FileEntry {
        FileEntry::new(name.as_bytes().to_vec(), mode)
    }

    #[test]
    fn files_sort_before_directories_and_a_directory_before_its_content() {
        let entries = vec![
            entry("sub", S_IFDIR),
            entry("zfile", S_IFREG),
            entry("sub/x", S_IFREG),
            entry(".", S_IFDIR),
            entry("sub.x", S_IFDIR),
            entry("afile", S_IFREG),
            entry("sub/deeper", S_IFDIR),
            entry("sub/z", S_IFREG),
        ];
        let order: Vec<&str> = sort_order(&entries)
            .into_iter()
            .map(|i| std::str::from_utf8(&entries[i].name).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                ".",
                "afile",
                "zfile",
                "sub.x",
                "sub",
                "sub/x",
                "sub/z",
                "sub/deeper"
            ]
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in ["../x", "a/../b", "/etc/passwd", "a\0b", ""] {
            assert!(check_name(name.as_bytes()).is_err(), "{name:?}");
        }
        assert!(check_name(b"a/..b/c").is_ok());
    }
}

/// The fields the next entry may share with the previous one, on the sending side.
#[derive(Default)]
pub struct Encoder {
    last_name: Vec<u8>,
    mode: Option<u32>,
    mtime: Option<i64>,
    uid: Option<u32>,
    gid: Option<u32>,
    rdev_major: Option<u32>,
    sets: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
}

fn put_varint30(out: &mut Vec<u8>, protocol: i32, value: i32) {
    if protocol < 30 {
        crate::wire::put_i32(out, value);
    } else {
        crate::wire::put_varint(out, value);
    }
}

fn put_varlong30(out: &mut Vec<u8>, protocol: i32, value: i64, min: usize) {
    if protocol < 30 {
        crate::wire::put_longint(out, value);
    } else {
        crate::wire::put_varlong(out, value, min);
    }
}

impl Encoder {
    /// Appends one entry (`send_file_entry`). `first_of_group` is the index of an earlier
    /// entry this one is a hard link to (protocol 30+), or `Some(self)` for the first name
    /// of a group; before protocol 30 hard links carry `(dev, ino)` instead (`inode`).
    pub fn put(
        &mut self,
        out: &mut Vec<u8>,
        options: &ListOptions,
        index: usize,
        entry: &FileEntry,
        hard_link: Option<usize>,
        inode: Option<(i64, i64)>,
    ) {
        let protocol = options.protocol;
        let kind = entry.kind();
        let mut flags: u32 = 0;
        if kind == S_IFDIR && entry.name == b"." {
            flags |= XMIT_TOP_DIR_FLAG;
        }
        if self.mode == Some(entry.mode) {
            flags |= XMIT_SAME_MODE;
        }
        self.mode = Some(entry.mode);
        let is_device = kind == S_IFCHR || kind == S_IFBLK;
        let is_special = kind == S_IFIFO || kind == S_IFSOCK;
        let (major, minor) = entry.rdev.unwrap_or((0, 0));
        if options.devices && is_device {
            if self.rdev_major == Some(major) {
                flags |= XMIT_SAME_RDEV_MAJOR;
            }
            self.rdev_major = Some(major);
            if protocol < 30 && minor <= 0xff {
                flags |= XMIT_RDEV_MINOR_8_PRE30;
            }
        } else if options.devices && is_special && protocol < 31 {
            flags |= XMIT_SAME_RDEV_MAJOR;
            if self.rdev_major.is_none() {
                // Nothing sent yet: the receiver's previous major is 0.
                self.rdev_major = Some(0);
            }
            if protocol < 30 {
                flags |= XMIT_RDEV_MINOR_8_PRE30;
            }
        }
        let first = self.last_name.is_empty();
        if options.owners {
            if !first && self.uid == Some(entry.uid) {
                flags |= XMIT_SAME_UID;
            }
            if !first && self.gid == Some(entry.gid) {
                flags |= XMIT_SAME_GID;
            }
            self.uid = Some(entry.uid);
            self.gid = Some(entry.gid);
        } else {
            flags |= XMIT_SAME_UID | XMIT_SAME_GID;
        }
        if self.mtime == Some(entry.mtime) {
            flags |= XMIT_SAME_TIME;
        }
        self.mtime = Some(entry.mtime);
        if entry.mtime_nsec != 0 && protocol >= 31 {
            flags |= XMIT_MOD_NSEC;
        }
        let mut leader = None;
        if options.hard_links && (hard_link.is_some() || inode.is_some()) {
            flags |= XMIT_HLINKED;
            if protocol >= 30 {
                match hard_link {
                    Some(l) if l != index => leader = Some(l),
                    _ => flags |= XMIT_HLINK_FIRST,
                }
            }
        }
        let common = self
            .last_name
            .iter()
            .zip(&entry.name)
            .take(255)
            .take_while(|(a, b)| a == b)
            .count();
        let rest = &entry.name[common..];
        if common > 0 {
            flags |= XMIT_SAME_NAME;
        }
        if rest.len() > 255 {
            flags |= XMIT_LONG_NAME;
        }
        if options.varint_flags {
            crate::wire::put_varint(
                out,
                if flags == 0 {
                    XMIT_EXTENDED_FLAGS as i32
                } else {
                    flags as i32
                },
            );
        } else {
            if flags == 0 && kind != S_IFDIR {
                flags |= XMIT_TOP_DIR_FLAG;
            }
            if flags & 0xff00 != 0 || flags == 0 {
                flags |= XMIT_EXTENDED_FLAGS;
                crate::wire::put_u16(out, flags as u16);
            } else {
                out.push(flags as u8);
            }
        }
        if flags & XMIT_SAME_NAME != 0 {
            out.push(common as u8);
        }
        if flags & XMIT_LONG_NAME != 0 {
            put_varint30(out, protocol, rest.len() as i32);
        } else {
            out.push(rest.len() as u8);
        }
        out.extend_from_slice(rest);
        self.last_name.clone_from(&entry.name);
        if let Some(l) = leader {
            crate::wire::put_varint(out, l as i32);
        } else {
            put_varlong30(out, protocol, entry.size as i64, 3);
            if flags & XMIT_SAME_TIME == 0 {
                if protocol >= 30 {
                    crate::wire::put_varlong(out, entry.mtime, 4);
                } else {
                    crate::wire::put_i32(out, entry.mtime as i32);
                }
            }
            if flags & XMIT_MOD_NSEC != 0 {
                crate::wire::put_varint(out, entry.mtime_nsec as i32);
            }
            if flags & XMIT_SAME_MODE == 0 {
                crate::wire::put_i32(out, entry.mode as i32);
            }
            if options.owners {
                if flags & XMIT_SAME_UID == 0 {
                    put_varint30(out, protocol, entry.uid as i32);
                }
                if flags & XMIT_SAME_GID == 0 {
                    put_varint30(out, protocol, entry.gid as i32);
                }
            }
            if options.devices && (is_device || (is_special && protocol < 31)) {
                let minor = if is_device { minor } else { 0 };
                if flags & XMIT_SAME_RDEV_MAJOR == 0 {
                    put_varint30(out, protocol, major as i32);
                }
                if protocol >= 30 {
                    crate::wire::put_varint(out, minor as i32);
                } else if flags & XMIT_RDEV_MINOR_8_PRE30 != 0 {
                    out.push(minor as u8);
                } else {
                    crate::wire::put_i32(out, minor as i32);
                }
            }
            if options.links && kind == S_IFLNK {
                let target = entry.target.as_deref().unwrap_or(b"");
                put_varint30(out, protocol, target.len() as i32);
                out.extend_from_slice(target);
            }
            if let (Some((dev, ino)), true) = (inode, protocol < 30) {
                crate::wire::put_longint(out, dev + 1);
                crate::wire::put_longint(out, ino);
            }
        }
        if options.xattrs {
            self.put_xattrs(out, entry);
        }
    }

    /// `send_xattr`: a set sent before by its index, or the set itself, values longer than
    /// [`MAX_FULL_DATUM`] abbreviated to their checksum.
    fn put_xattrs(&mut self, out: &mut Vec<u8>, entry: &FileEntry) {
        if let Some(i) = self.sets.iter().position(|s| *s == entry.xattrs) {
            crate::wire::put_varint(out, i as i32 + 1);
            return;
        }
        crate::wire::put_varint(out, 0);
        crate::wire::put_varint(out, entry.xattrs.len() as i32);
        for (name, value) in &entry.xattrs {
            crate::wire::put_varint(out, name.len() as i32 + 1);
            crate::wire::put_varint(out, value.len() as i32);
            out.extend_from_slice(name);
            out.push(0);
            if value.len() > MAX_FULL_DATUM {
                // Long values go as their MD5; the receiver asks for the ones it lacks.
                use md5::Digest as _;
                out.extend(md5::Md5::digest(value));
            } else {
                out.extend_from_slice(value);
            }
        }
        self.sets.push(entry.xattrs.clone());
    }

    /// The end of the list (`write_end_of_flist`), then the owner and group names, then
    /// (before protocol 30) the I/O error flag.
    pub fn finish(
        &self,
        out: &mut Vec<u8>,
        options: &ListOptions,
        users: &[(u32, String)],
        groups: &[(u32, String)],
    ) {
        if options.varint_flags {
            crate::wire::put_varint(out, 0);
            crate::wire::put_varint(out, 0);
        } else {
            out.push(0);
        }
        if options.owners && options.id_names {
            for list in [users, groups] {
                for (id, name) in list.iter().filter(|(id, _)| *id != 0) {
                    put_varint30(out, options.protocol, *id as i32);
                    let name = &name.as_bytes()[..name.len().min(255)];
                    out.push(name.len() as u8);
                    out.extend_from_slice(name);
                }
                put_varint30(out, options.protocol, 0);
            }
        }
        if options.protocol < 30 {
            crate::wire::put_i32(out, 0);
        }
    }
}

const XMIT_TOP_DIR_FLAG: u32 = 1 << 0;

#[cfg(test)]
mod fuzz {
    //! A deterministic fuzz run that CI can afford: a valid list, mutated thousands of ways,
    //! must decode or fail with an error, never panic (the `fuzz/` target does the same
    //! without end).
    use super::*;

    fn options(protocol: i32, varint_flags: bool) -> ListOptions {
        ListOptions {
            protocol,
            varint_flags,
            safe_flist: true,
            owners: true,
            devices: true,
            links: true,
            hard_links: true,
            xattrs: protocol >= 30,
            id_names: true,
        }
    }

    fn sample(options: &ListOptions) -> Vec<u8> {
        let entry = |name: &str, mode: u32, size: u64| FileEntry {
            name: name.as_bytes().to_vec(),
            mode,
            size,
            mtime: 1_700_000_000,
            mtime_nsec: 5,
            uid: 1000,
            gid: 1000,
            rdev: (mode & S_IFMT == S_IFCHR).then_some((1, 3)),
            target: (mode & S_IFMT == S_IFLNK).then(|| b"target".to_vec()),
            hardlink_leader: None,
            xattrs: vec![(b"user.a".to_vec(), b"v".to_vec())],
            abbreviated: Vec::new(),
        };
        let entries = [
            entry(".", S_IFDIR | 0o755, 0),
            entry("a", S_IFREG | 0o644, 12),
            entry("dir", S_IFDIR | 0o700, 0),
            entry("dir/link", S_IFLNK | 0o777, 6),
            entry("dir/null", S_IFCHR | 0o600, 0),
            entry("dir/x", S_IFREG | 0o600, 1 << 33),
        ];
        let mut encoder = Encoder::default();
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            // `a` and `dir/x` are one file with two names.
            let link = (i == 1 || i == 5).then_some(1);
            encoder.put(&mut out, options, i, e, link, link.map(|_| (1, 7)));
        }
        encoder.finish(
            &mut out,
            options,
            &[(1000, "user".into())],
            &[(1000, "group".into())],
        );
        out
    }

    #[test]
    fn encoded_lists_decode_back() {
        for (protocol, varint) in [(31, true), (30, true), (30, false), (29, false)] {
            let options = options(protocol, varint);
            let bytes = sample(&options);
            let list = read_file_list(&mut bytes.as_slice(), &options)
                .unwrap_or_else(|e| panic!("protocol {protocol}: {e:?}"));
            assert_eq!(list.entries.len(), 6);
            assert_eq!(list.users.get(&1000).map(String::as_str), Some("user"));
            let x = &list.entries[5];
            assert_eq!(x.hardlink_leader, Some(1), "protocol {protocol}");
            // From protocol 30 a second name carries only its leader's index.
            let size = if protocol >= 30 { 12 } else { 1 << 33 };
            assert_eq!(x.size, size, "protocol {protocol}");
            assert_eq!(
                list.entries[3].target.as_deref(),
                Some(b"target".as_slice())
            );
            assert_eq!(list.entries[4].rdev, Some((1, 3)));
        }
    }

    #[test]
    fn mutated_lists_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (protocol, varint) in [(31, true), (30, false), (29, false)] {
            let options = options(protocol, varint);
            let base = sample(&options);
            for _ in 0..5_000 {
                let mut bytes = base.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    match next() % 4 {
                        0 => bytes[at] = next() as u8,
                        1 => bytes.truncate(at),
                        2 => bytes.insert(at, next() as u8),
                        _ => bytes[at] ^= 0x80,
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
                let _ = read_file_list(&mut bytes.as_slice(), &options);
            }
        }
    }
}
