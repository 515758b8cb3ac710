//! Fixture trees with the hard cases of backup, a mutation step, and a description of a tree
//! (every entry's kind, mode, owners, times, content hash, link target) to compare a restore
//! against its source.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// What a tree holds at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// `f`, `d`, `l`, `p` (fifo), `c`, `b`, `s`.
    pub kind: char,
    /// Permission bits with setuid, setgid, sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, seconds and nanoseconds (directories: not compared).
    pub mtime: Option<(i64, i64)>,
    /// BLAKE3-free content digest (length + a 64-bit FNV), enough to catch any difference in
    /// a test.
    pub content: Option<(u64, u64)>,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Describes every entry under `root` (relative paths as bytes; the root is `""`).
pub fn describe_tree(root: &Path) -> std::io::Result<BTreeMap<Vec<u8>, Described>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path)?;
        let file_type = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_dir() {
            'd'
        } else if file_type.is_symlink() {
            'l'
        } else if file_type.is_fifo() {
            'p'
        } else if file_type.is_char_device() {
            'c'
        } else if file_type.is_block_device() {
            'b'
        } else if file_type.is_socket() {
            's'
        } else {
            'f'
        };
        let content = if kind == 'f' {
            let data = std::fs::read(&path)?;
            Some((data.len() as u64, fnv(&data)))
        } else {
            None
        };
        let target = if kind == 'l' {
            Some(std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec())
        } else {
            None
        };
        out.insert(
            rel.as_os_str().as_bytes().to_vec(),
            Described {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: (kind != 'd' && kind != 'l').then(|| (meta.mtime(), meta.mtime_nsec())),
                content,
                target,
            },
        );
        if kind == 'd' {
            for entry in std::fs::read_dir(&path)? {
                stack.push(rel.join(entry?.file_name()));
            }
        }
    }
    Ok(out)
}

/// The differences between two descriptions, one line each (empty when equal).
pub fn differences(
    expected: &BTreeMap<Vec<u8>, Described>,
    actual: &BTreeMap<Vec<u8>, Described>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, want) in expected {
        let name = String::from_utf8_lossy(path);
        match actual.get(path) {
            None => lines.push(format!("missing: {name}")),
            Some(got) if got != want => {
                lines.push(format!("differs: {name}: expected {want:?}, got {got:?}"))
            }
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        lines.push(format!("unexpected: {}", String::from_utf8_lossy(path)));
    }
    lines
}

fn set_mtime(path: &Path, seconds: i64, nanos: i64) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let times = [
        libc::timespec {
            tv_sec: seconds,
            tv_nsec: nanos,
        },
        libc::timespec {
            tv_sec: seconds,
            tv_nsec: nanos,
        },
    ];
    // SAFETY: `c` is a valid NUL-terminated path and `times` two initialised timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(path)?.write_all(data)
}

/// Builds a tree with the hard cases under `root`: non-UTF-8, long, newline and dash names,
/// deep paths, empty files and directories, sizes around powers of two, duplicate contents,
/// symlinks (relative, absolute, dangling), a hard link, a fifo, setuid/sticky/000 modes,
/// owners with no local name, mtimes before 1970 and after 2038 with nanoseconds.
pub fn build_tree(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    write(&root.join("plain.txt"), b"hello\n")?;
    write(
        &root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9.txt")),
        b"not utf-8 name\n",
    )?;
    write(&root.join("-starts-with-dash"), b"dash\n")?;
    write(&root.join("new\nline"), b"newline in name\n")?;
    write(&root.join("x".repeat(200)), b"long name\n")?;
    write(&root.join("unicode-✓-名前.txt"), "unicode\n".as_bytes())?;
    let mut deep = root.to_path_buf();
    for i in 0..24 {
        deep.push(format!("level{i}"));
    }
    write(&deep.join("deep.txt"), b"deep\n")?;
    std::fs::create_dir_all(root.join("empty-dir"))?;
    write(&root.join("empty-file"), b"")?;
    for (i, size) in [
        4095usize,
        4096,
        4097,
        65_536,
        1 << 20,
        (1 << 20) + 1,
        3 << 20,
    ]
    .iter()
    .enumerate()
    {
        let data: Vec<u8> = (0..*size).map(|j| ((j * 31 + i * 7) % 251) as u8).collect();
        write(&root.join("sizes").join(format!("size-{size}")), &data)?;
    }
    write(&root.join("dup/a.bin"), &[7u8; 100_000])?;
    write(&root.join("dup/b.bin"), &[7u8; 100_000])?;
    symlink("plain.txt", root.join("link-relative"))?;
    symlink("/etc/hostname", root.join("link-absolute"))?;
    symlink("no/such/target", root.join("link-dangling"))?;
    std::fs::create_dir_all(root.join("links"))?;
    std::fs::hard_link(root.join("plain.txt"), root.join("links/hardlink-to-plain"))?;
    let fifo = std::ffi::CString::new(root.join("fifo").as_os_str().as_bytes())
        .map_err(std::io::Error::other)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // A fixed time: rsync compares a special file's mtime to the second only, so a fifo made
    // in the same second as its copy would keep the copy's creation time.
    set_mtime(&root.join("fifo"), 1_600_000_000, 250_000_000)?;
    write(&root.join("modes/setuid"), b"#!/bin/sh\n")?;
    std::fs::set_permissions(
        root.join("modes/setuid"),
        std::fs::Permissions::from_mode(0o4755),
    )?;
    std::fs::create_dir_all(root.join("modes/sticky"))?;
    std::fs::set_permissions(
        root.join("modes/sticky"),
        std::fs::Permissions::from_mode(0o1777),
    )?;
    write(&root.join("modes/none"), b"secret\n")?;
    std::fs::set_permissions(
        root.join("modes/none"),
        std::fs::Permissions::from_mode(0o000),
    )?;
    write(&root.join("owners/nobody-knows"), b"owned by 4321:4321\n")?;
    std::os::unix::fs::lchown(root.join("owners/nobody-knows"), Some(4321), Some(4321))?;
    write(&root.join("times/before-1970"), b"old\n")?;
    set_mtime(&root.join("times/before-1970"), -86_400 * 365, 123_456_789)?;
    write(&root.join("times/after-2038"), b"future\n")?;
    set_mtime(&root.join("times/after-2038"), 2_300_000_000, 987_654_321)?;
    write(&root.join("times/nanos"), b"ns\n")?;
    set_mtime(&root.join("times/nanos"), 1_700_000_000, 1)?;
    Ok(())
}

/// Changes a tree built by [`build_tree`]: modifies a file in place, appends to another, adds
/// one, deletes one, renames a directory, changes only the metadata of another.
pub fn mutate_tree(root: &Path) -> std::io::Result<()> {
    write(&root.join("plain.txt"), b"HELLO, changed\n")?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("sizes/size-4096"))?;
    f.write_all(b"appended")?;
    write(&root.join("added/new-file.txt"), b"added after the full\n")?;
    std::fs::remove_file(root.join("dup/b.bin"))?;
    std::fs::rename(root.join("sizes"), root.join("sizes-renamed"))?;
    std::fs::set_permissions(
        root.join("-starts-with-dash"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    Ok(())
}
