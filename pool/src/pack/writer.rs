//! Appending objects to a new pack file and making it durable (data, then fsync of file and
//! directory) before the index may refer to it.
//!
//! While a pack fills, its written part is handed to the kernel for writeback every
//! [`WRITEBACK_STEP`] bytes, on a thread of its own ([`Writeback`]), so that the final fsync
//! finds little left to write: that fsync is on the critical path at the end of every backup.
//! Only whole pages well behind the write position are handed over, because a write into a
//! page under writeback waits for the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{ObjectLocation, PACK_MAGIC, PackId, encode_header};
use crate::error::PoolError;
use crate::fault::WriteFaults;
use crate::object::{ObjectId, ObjectKind};

/// The pack file as a `Write`, charging an optional injected-failure budget.
struct PackFile {
    file: File,
    faults: Option<WriteFaults>,
}

impl Write for PackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = &self.faults {
            f.charge(buf.len())?;
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Bytes appended between two writeback requests.
const WRITEBACK_STEP: u64 = 8 << 20;

/// How far behind the write position a writeback request ends (past the write buffer, and
/// page-aligned), so the writer never writes into a page under writeback.
const WRITEBACK_LAG: u64 = 2 << 20;

/// Starts writeback of ranges of a pack file on a helper thread, without waiting for it.
/// The thread starts with the first range, so a pack that never reaches one costs nothing.
/// Failures are ignored here: the final fsync reports them.
#[derive(Default)]
struct Writeback {
    helper: Helper,
    /// Where the next range starts.
    next: u64,
}

#[derive(Default)]
enum Helper {
    #[default]
    NotStarted,
    Running {
        ranges: mpsc::Sender<(u64, u64)>,
        thread: JoinHandle<()>,
    },
    /// No thread could be had (or it is gone): writeback happens at the final fsync only.
    Unavailable,
}

impl Writeback {
    /// Asks for writeback of whole pages up to [`WRITEBACK_LAG`] before the end of `out`,
    /// once a step's worth has gathered, after putting `out`'s buffered bytes into the file.
    fn advance(&mut self, out: &mut BufWriter<PackFile>, written: u64) -> io::Result<()> {
        if matches!(self.helper, Helper::Unavailable) {
            return Ok(());
        }
        let Some((offset, len)) = writeback_range(self.next, written) else {
            return Ok(());
        };
        out.flush()?;
        if matches!(self.helper, Helper::NotStarted) {
            self.helper = start_helper(&out.get_ref().file);
        }
        if let Helper::Running { ranges, .. } = &self.helper
            && ranges.send((offset, len)).is_err()
        {
            self.helper = Helper::Unavailable;
        }
        self.next = offset + len;
        Ok(())
    }

    /// Waits for the helper to hand over its last request.
    fn stop(&mut self) {
        if let Helper::Running { ranges, thread } = std::mem::take(&mut self.helper) {
            drop(ranges);
            let _ = thread.join();
        }
    }
}

/// The helper thread, with a handle of its own on `file`.
fn start_helper(file: &File) -> Helper {
    let Ok(file) = file.try_clone() else {
        return Helper::Unavailable;
    };
    let (ranges, requests) = mpsc::channel::<(u64, u64)>();
    let spawned = std::thread::Builder::new()
        .name("hoard-writeback".into())
        .spawn(move || {
            for (offset, len) in requests {
                start_writeback(&file, offset, len);
            }
        });
    match spawned {
        Ok(thread) => Helper::Running { ranges, thread },
        Err(_) => Helper::Unavailable,
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The range to hand over, as `(offset, len)`, when `written` bytes are in the file and
/// everything before `next` was handed over: whole pages, ending [`WRITEBACK_LAG`] or more
/// before `written`, at least [`WRITEBACK_STEP`] long.
fn writeback_range(next: u64, written: u64) -> Option<(u64, u64)> {
    let end = written.saturating_sub(WRITEBACK_LAG) & !(PAGE - 1);
    (end >= next + WRITEBACK_STEP).then(|| (next, end - next))
}

/// The page size writeback ranges are aligned to (a multiple of every page size in use).
const PAGE: u64 = 4096;

/// Starts writing `len` bytes of `file` at `offset` back to disk, without waiting for it.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: sync_file_range only reads its arguments; the descriptor is open for the
    // lifetime of `file`.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Elsewhere the final fsync does all the writing.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// A pack being written.
pub(crate) struct PackWriter {
    id: PackId,
    path: PathBuf,
    out: BufWriter<PackFile>,
    len: u64,
    objects: Vec<(ObjectId, ObjectLocation)>,
    writeback: Writeback,
}

/// A pack made durable: what the index must now learn.
pub(crate) struct FinishedPack {
    /// The pack.
    pub id: PackId,
    /// Its file length.
    pub len: u64,
    /// Every object in it.
    pub objects: Vec<(ObjectId, ObjectLocation)>,
}

impl PackWriter {
    /// Creates the (new, never existing) file of pack `id` and writes its header.
    pub(crate) fn create(
        packs_dir: &Path,
        id: PackId,
        faults: Option<WriteFaults>,
    ) -> Result<PackWriter, PoolError> {
        let path = id.path(packs_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| PoolError::io("creating pack directory", dir, e))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| PoolError::io("creating pack", &path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, PackFile { file, faults });
        out.write_all(PACK_MAGIC)
            .map_err(|e| PoolError::io("writing pack", &path, e))?;
        Ok(PackWriter {
            id,
            path,
            out,
            len: PACK_MAGIC.len() as u64,
            objects: Vec::new(),
            writeback: Writeback::default(),
        })
    }

    /// The pack's file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one object record.
    pub(crate) fn append(
        &mut self,
        id: ObjectId,
        kind: ObjectKind,
        compressed: bool,
        plain_len: u32,
        stored: &[u8],
    ) -> Result<ObjectLocation, PoolError> {
        let stored_len = u32::try_from(stored.len())
            .map_err(|_| PoolError::InvalidOptions(format!("object {id} larger than 4 GiB")))?;
        let header = encode_header(&id, kind, compressed, plain_len, stored_len);
        let loc = ObjectLocation {
            pack: self.id,
            offset: self.len,
            stored_len,
            plain_len,
            kind,
            compressed,
        };
        self.out
            .write_all(&header)
            .map_err(|e| PoolError::io("writing pack", &self.path, e))?;
        self.out
            .write_all(stored)
            .map_err(|e| PoolError::io("writing pack", &self.path, e))?;
        self.len += loc.record_len();
        self.objects.push((id, loc));
        self.writeback
            .advance(&mut self.out, self.len)
            .map_err(|e| PoolError::io("writing pack", &self.path, e))?;
        Ok(loc)
    }

    /// Flushes and fsyncs the pack and its directory entry.
    pub(crate) fn finish(mut self) -> Result<FinishedPack, PoolError> {
        self.writeback.stop();
        let path = self.path;
        let pack_file = self
            .out
            .into_inner()
            .map_err(|e| PoolError::io("writing pack", &path, e.into_error()))?;
        pack_file
            .file
            .sync_all()
            .map_err(|e| PoolError::io("syncing pack", &path, e))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(FinishedPack {
            id: self.id,
            len: self.len,
            objects: self.objects,
        })
    }
}

/// Fsyncs a directory so a newly created or renamed entry survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), PoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PoolError::io("syncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writeback_ranges_are_whole_pages_well_behind_the_writer() {
        assert_eq!(writeback_range(0, WRITEBACK_STEP), None);
        let mut next = 0;
        let mut handed = Vec::new();
        for written in (0..200u64).map(|n| n * 700_001) {
            if let Some((offset, len)) = writeback_range(next, written) {
                assert_eq!(offset, next, "ranges follow each other");
                assert!(len >= WRITEBACK_STEP);
                assert_eq!((offset + len) % PAGE, 0);
                assert!(offset + len + WRITEBACK_LAG <= written);
                next = offset + len;
                handed.push(len);
            }
        }
        assert!(handed.len() > 10, "{handed:?}");
    }
}
