//! Appending objects to a new pack file and making it durable (data, then fsync of file and
//! directory) before the index may refer to it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// A pack being written.
pub(crate) struct PackWriter {
    id: PackId,
    path: PathBuf,
    out: BufWriter<PackFile>,
    len: u64,
    objects: Vec<(ObjectId, ObjectLocation)>,
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
        Ok(loc)
    }

    /// Flushes and fsyncs the pack and its directory entry.
    pub(crate) fn finish(self) -> Result<FinishedPack, PoolError> {
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
