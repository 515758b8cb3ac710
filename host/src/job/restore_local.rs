//! Restoring a backup into a directory of the server, without a plugin.
//!
//! Nothing is ever written outside the target: every directory is opened relative to its
//! parent with `O_NOFOLLOW`, so a symlink in the backup (or one planted in the target) is
//! created or refused, never followed. Existing non-directories in the way are replaced.
//! Owners are restored when running as root; directory times are set last.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::share::relative_to;
use hoard_pool::{Entry, EntryKind, SnapshotReader, Timestamp};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

/// Why a restore into a directory failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Reading the backup failed.
    #[error("reading the backup: {0}")]
    Pool(#[from] hoard_pool::PoolError),
    /// Writing the target failed.
    #[error("{path}: {message}")]
    Write {
        /// The path inside the target.
        path: String,
        /// What failed.
        message: String,
    },
}

/// What a restore did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreSummary {
    /// Entries created.
    pub entries: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Entries that could not be restored (each reported through the callback).
    pub errors: u64,
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.seconds,
        tv_nsec: i64::from(t.nanos),
    }
}

/// Restores the subtree `source` of `reader` into `target` (created if missing), calling
/// `problem` for each entry that could not be restored.
pub fn restore_to_directory(
    reader: &SnapshotReader,
    source: &[u8],
    target: &Path,
    mut problem: impl FnMut(&str),
) -> Result<RestoreSummary, RestoreError> {
    let write_error = |path: &[u8], e: &dyn std::fmt::Display| RestoreError::Write {
        path: String::from_utf8_lossy(path).into_owned(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(target).map_err(|e| write_error(b"", &e))?;
    let root = rustix::fs::open(
        target,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| write_error(b"", &e))?;
    let as_root = rustix::process::geteuid().is_root();
    let mut summary = RestoreSummary::default();
    let mut directory_times: Vec<(Vec<u8>, Timestamp)> = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];

    for entry in reader.walk(source) {
        let entry = entry?;
        let Some(rel) = relative_to(source, &entry.path).map(<[u8]>::to_vec) else {
            continue;
        };
        match restore_entry(reader, &root, &rel, &entry, as_root, &mut buffer, source) {
            Ok(bytes) => {
                summary.entries += 1;
                summary.bytes += bytes;
                if matches!(entry.kind, EntryKind::Directory) {
                    directory_times.push((rel, entry.mtime));
                }
            }
            Err(e) => {
                summary.errors += 1;
                problem(&format!("{}: {e}", String::from_utf8_lossy(&rel)));
            }
        }
    }
    // Children changed their directories' times: set those last, deepest first.
    for (rel, mtime) in directory_times.iter().rev() {
        let times = Timestamps {
            last_access: timespec(*mtime),
            last_modification: timespec(*mtime),
        };
        let result = open_parent(&root, rel).and_then(|(dir, name)| {
            let name = if name.is_empty() { b".".to_vec() } else { name };
            rustix::fs::utimensat(&dir, name.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(std::io::Error::from)
        });
        if let Err(e) = result {
            problem(&format!(
                "{}: setting times: {e}",
                String::from_utf8_lossy(rel)
            ));
        }
    }
    Ok(summary)
}

/// Opens the directory holding `rel` (walking from `root` with `O_NOFOLLOW` at each step)
/// and returns it with the last component.
fn open_parent(root: &OwnedFd, rel: &[u8]) -> std::io::Result<(OwnedFd, Vec<u8>)> {
    let (parent, name) = match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..i], rel[i + 1..].to_vec()),
        None => (&rel[..0], rel.to_vec()),
    };
    let mut dir = rustix::fs::openat(
        root,
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for component in parent.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        if component == b".." || component == b"." {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "path leaves the target",
            ));
        }
        dir = rustix::fs::openat(
            &dir,
            component,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    if name == b".." || name == b"." {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path leaves the target",
        ));
    }
    Ok((dir, name))
}

/// Removes what is at `name` unless it is a directory we can reuse.
fn clear_way(dir: &OwnedFd, name: &[u8], want_directory: bool) -> std::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => {
            let is_dir = rustix::fs::FileType::from_raw_mode(stat.st_mode)
                == rustix::fs::FileType::Directory;
            if is_dir && want_directory {
                Ok(())
            } else if is_dir {
                Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ))
            } else {
                rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into)
            }
        }
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn restore_entry(
    reader: &SnapshotReader,
    root: &OwnedFd,
    rel: &[u8],
    entry: &Entry,
    as_root: bool,
    buffer: &mut [u8],
    source: &[u8],
) -> std::io::Result<u64> {
    let mode = Mode::from_raw_mode(entry.mode & 0o7777);
    let (dir, name) = if rel.is_empty() {
        (
            rustix::fs::openat(
                root,
                ".",
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            b".".to_vec(),
        )
    } else {
        open_parent(root, rel)?
    };
    let mut bytes = 0;
    match &entry.kind {
        EntryKind::Directory => {
            if name != b"." {
                clear_way(&dir, &name, true)?;
                match rustix::fs::mkdirat(&dir, name.as_slice(), Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        EntryKind::File => {
            clear_way(&dir, &name, false)?;
            let fd = rustix::fs::openat(
                &dir,
                name.as_slice(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = std::fs::File::from(fd);
            let mut content = reader
                .open_file(&entry.path)
                .map_err(std::io::Error::other)?;
            loop {
                let n = content.read(buffer)?;
                if n == 0 {
                    break;
                }
                file.write_all(&buffer[..n])?;
                bytes += n as u64;
            }
        }
        EntryKind::Symlink { target } => {
            clear_way(&dir, &name, false)?;
            rustix::fs::symlinkat(target.as_slice(), &dir, name.as_slice())?;
        }
        EntryKind::Hardlink { target } => {
            clear_way(&dir, &name, false)?;
            let Some(target_rel) = relative_to(source, target) else {
                return Err(std::io::Error::other(
                    "hard link to a file outside the restored tree",
                ));
            };
            let (target_dir, target_name) = open_parent(root, target_rel)?;
            rustix::fs::linkat(
                &target_dir,
                target_name.as_slice(),
                &dir,
                name.as_slice(),
                AtFlags::empty(),
            )?;
            return Ok(0);
        }
        EntryKind::Fifo => {
            clear_way(&dir, &name, false)?;
            rustix::fs::mknodat(&dir, name.as_slice(), rustix::fs::FileType::Fifo, mode, 0)?;
        }
        EntryKind::CharDevice(d) | EntryKind::BlockDevice(d) => {
            clear_way(&dir, &name, false)?;
            let kind = if matches!(entry.kind, EntryKind::CharDevice(_)) {
                rustix::fs::FileType::CharacterDevice
            } else {
                rustix::fs::FileType::BlockDevice
            };
            rustix::fs::mknodat(
                &dir,
                name.as_slice(),
                kind,
                mode,
                rustix::fs::makedev(d.major, d.minor),
            )?;
        }
        EntryKind::Socket => {
            return Err(std::io::Error::other(
                "sockets are not restored (they are recreated by their servers)",
            ));
        }
    }
    let is_symlink = matches!(entry.kind, EntryKind::Symlink { .. });
    if as_root {
        let owner = Some(rustix::fs::Uid::from_raw(entry.uid));
        let group = Some(rustix::fs::Gid::from_raw(entry.gid));
        rustix::fs::chownat(
            &dir,
            name.as_slice(),
            owner,
            group,
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if !is_symlink {
        rustix::fs::chmodat(&dir, name.as_slice(), mode, AtFlags::empty())?;
    }
    for xattr in &entry.xattrs {
        if !is_symlink
            && let Ok(fd) = rustix::fs::openat(
                &dir,
                name.as_slice(),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        {
            let _ = rustix::fs::fsetxattr(
                fd.as_fd(),
                xattr.name.as_slice(),
                &xattr.value,
                rustix::fs::XattrFlags::empty(),
            );
        }
    }
    if !matches!(entry.kind, EntryKind::Directory) {
        let times = Timestamps {
            last_access: timespec(entry.mtime),
            last_modification: timespec(entry.mtime),
        };
        rustix::fs::utimensat(&dir, name.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(bytes)
}
