//! A backup: this side is rsync's receiver and generator in one, the client's rsync the
//! sender. After the file list arrives, every entry goes to the sink in rsync's order:
//! directories, symlinks, devices and specials at once; regular files that the incremental
//! rules call unchanged are kept from the reference without moving content; every other file
//! is requested with the block checksums of its version in the reference (the basis), and
//! rebuilt from the sender's literal data and block references, then checked against the
//! sender's whole-file checksum. A file that fails the check is requested again, whole, in
//! the redo phase. Hard links are added last, when their first name is stored.

use std::collections::{HashMap, HashSet, VecDeque};

use hoard_plugin_sdk::path::is_under;
use hoard_plugin_sdk::transport::hoard::plugin::sink;
use hoard_plugin_sdk::transport::hoard::plugin::types::{
    BackupLevel, DeviceNumber, Entry, EntryKind, JobSummary, Timestamp, Xattr,
};
use hoard_plugin_sdk::transport::hoard::plugin::{job, reference};

use crate::checksum::rolling;
use crate::error::{Error, protocol};
use crate::flist::{
    FileEntry, FileList, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK,
    read_file_list,
};
use crate::reference_index::{ReferenceIndex, unchanged_directories};
use crate::session::Session;
use crate::wire::{
    NDX_DONE, put_i32, put_u16, put_varint, read_bytes, read_i32, read_u8, read_u16, read_varint,
    read_varlong, read_vstring,
};

/// rsync's smallest block.
const BLOCK_SIZE: i64 = 700;
/// Largest block of protocol 30 and later.
const MAX_BLOCK_SIZE: i64 = 1 << 17;
/// Longest xattr value accepted.
const MAX_XATTR_VALUE: usize = 16 << 20;
/// Largest literal run accepted in one token.
const MAX_LITERAL: usize = 1 << 20;
/// Bytes of the basis read from the reference per call.
const BASIS_READ: u32 = 1 << 20;
/// Queued requests (bytes) before this side reads answers.
const HIGH_WATER: usize = 4 << 20;

const ITEM_TRANSFER: u16 = 1 << 15;
const ITEM_REPORT_XATTR: u16 = 1 << 8;
const ITEM_BASIS_TYPE_FOLLOWS: u16 = 1 << 11;
const ITEM_XNAME_FOLLOWS: u16 = 1 << 12;
const ITEM_IS_NEW: u16 = 1 << 13;

/// Counts for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    /// Entries handled.
    pub entries: u64,
    /// Content bytes rebuilt.
    pub bytes: u64,
    /// Entries that failed.
    pub errors: u64,
    /// Bytes that arrived as literal data.
    pub literal: u64,
    /// Bytes copied from the basis.
    pub matched: u64,
    /// Files kept from the reference without any transfer.
    pub kept: u64,
}

/// The basis of one requested file: its version in the reference, cut into blocks.
#[derive(Debug, Clone)]
struct Basis {
    path: Vec<u8>,
    block: u32,
    count: u32,
    remainder: u32,
}

impl Basis {
    /// The basis's length in bytes.
    fn len(&self) -> u64 {
        u64::from(self.block) * u64::from(self.count.saturating_sub(1))
            + u64::from(self.block_len(self.count.saturating_sub(1)))
    }

    /// Bytes read from the reference at once: whole blocks, about [`BASIS_READ`].
    fn read_size(&self) -> u64 {
        u64::from((BASIS_READ / self.block).max(1) * self.block)
    }

    fn block_len(&self, index: u32) -> u32 {
        if index + 1 == self.count && self.remainder != 0 {
            self.remainder
        } else {
            self.block
        }
    }
}

/// One file asked of the sender.
struct Request {
    entry: Entry,
    basis: Option<Basis>,
    /// Positions in `entry.xattrs` holding only a checksum: their values were asked for.
    abbreviated: Vec<usize>,
    /// Without a transfer: how the entry is stored once its xattr values arrive.
    store: Store,
}

/// What becomes of an entry asked for only its long xattr values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Content follows (a transfer).
    Content,
    /// Added as it is (a directory, symlink, device...).
    Add,
    /// A regular file unchanged since the reference.
    Keep,
}

/// The job's state while files arrive.
struct Receiver<'a> {
    session: &'a mut Session,
    list: &'a FileList,
    level: BackupLevel,
    has_reference: bool,
    counts: Counts,
    outstanding: HashMap<i32, Request>,
    redo: VecDeque<i32>,
    hardlinks: Vec<Entry>,
    index: ReferenceIndex,
}

/// Receives the file list and every file; returns the counts. The session must be set up.
pub fn receive(
    session: &mut Session,
    level: BackupLevel,
    has_reference: bool,
    filter_rules: &[Vec<u8>],
) -> Result<(JobSummary, Counts), Error> {
    session.conn.start_mux_in();
    if session.protocol >= 30 {
        session.conn.start_mux_out();
    }
    let mut out = Vec::new();
    for rule in filter_rules {
        put_i32(&mut out, rule.len() as i32);
        out.extend_from_slice(rule);
    }
    put_i32(&mut out, 0);
    session.conn.send(&out);
    session.conn.flush()?;

    let list = read_file_list(&mut session.conn, &session.list)?;
    if list.entries.is_empty() {
        // rsync's sender ends the session right after an empty list.
        return Err(crate::error::client(
            "the client's rsync sent an empty file list: the share is missing or unreadable (its messages are in the job log)",
        ));
    }
    job::log(
        job::Level::Info,
        &format!(
            "rsync protocol {}, checksum {}, {} entries in the file list",
            session.protocol,
            session.checksum.name(),
            list.entries.len()
        ),
    );
    if list.io_error != 0 {
        job::log(
            job::Level::Warning,
            &format!(
                "the client's rsync could not read everything (I/O error flags {:#x})",
                list.io_error
            ),
        );
    }
    let mut receiver = Receiver {
        session,
        list: &list,
        level,
        has_reference,
        counts: Counts::default(),
        outstanding: HashMap::new(),
        redo: VecDeque::new(),
        hardlinks: Vec::new(),
        index: ReferenceIndex::default(),
    };
    receiver.generate()?;
    receiver.finish_phases()?;
    for link in std::mem::take(&mut receiver.hardlinks) {
        receiver.add(&link);
    }
    let counts = receiver.counts;
    let news = &session.conn.news;
    let partial = list.io_error != 0 || news.io_error != 0 || counts.errors > 0;
    Ok((
        JobSummary {
            entries: counts.entries,
            bytes: counts.bytes,
            errors: counts.errors + news.errors,
            partial,
        },
        counts,
    ))
}

impl Receiver<'_> {
    fn check_cancelled(&self) -> Result<(), Error> {
        if job::cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Adds an entry without content; a refusal by the host is logged and counted.
    fn add(&mut self, entry: &Entry) {
        match sink::add(entry) {
            Ok(()) => self.counts.entries += 1,
            Err(e) => self.entry_error(&entry.path, &e),
        }
    }

    fn entry_error(&mut self, path: &[u8], e: &Error) {
        self.counts.errors += 1;
        job::log(
            job::Level::Error,
            &format!("{}: {}", String::from_utf8_lossy(path), describe(e)),
        );
    }

    /// The generator's pass: every entry in sorted order, requests queued for the files
    /// that must move, answers read whenever the queue is long.
    fn generate(&mut self) -> Result<(), Error> {
        let list = self.list;
        let mut entries = Vec::with_capacity(list.sorted.len());
        for &arrival in &list.sorted {
            let file = &list.entries[arrival];
            let mut entry = to_entry(file, list)?;
            if let Some(leader) = file.hardlink_leader.filter(|l| *l != arrival) {
                entry.kind = EntryKind::Hardlink(list.entries[leader].share_path());
                entry.size = 0;
                drop_abbreviated(&mut entry, &file.abbreviated);
            }
            entries.push(entry);
        }
        let kept_whole = if self.level == BackupLevel::Incremental && self.has_reference {
            unchanged_directories(&mut self.index, &entries)?
        } else {
            HashSet::new()
        };
        let mut kept_subtree: Option<Vec<u8>> = None;
        for (ndx, entry) in entries.into_iter().enumerate() {
            self.check_cancelled()?;
            if let Some(top) = &kept_subtree {
                if entry.path != *top && is_under(&entry.path, top) {
                    self.counts.entries += 1;
                    self.counts.kept += u64::from(matches!(entry.kind, EntryKind::File));
                    continue;
                }
                kept_subtree = None;
            }
            if matches!(entry.kind, EntryKind::Directory) && kept_whole.contains(&entry.path) {
                match sink::keep_tree(&entry.path) {
                    Ok(()) => {
                        self.counts.entries += 1;
                        kept_subtree = Some(entry.path);
                    }
                    Err(e) => self.entry_error(&entry.path, &e),
                }
                continue;
            }
            if matches!(entry.kind, EntryKind::Hardlink(_)) {
                self.hardlinks.push(entry);
                continue;
            }
            let abbreviated = list.entries[list.sorted[ndx]].abbreviated.clone();
            if !matches!(entry.kind, EntryKind::File) {
                if abbreviated.is_empty() {
                    self.add(&entry);
                } else {
                    self.ask_xattrs(ndx as i32, entry, abbreviated, Store::Add)?;
                }
                continue;
            }
            let old = self.reference_file(&entry)?;
            let unchanged = self.level == BackupLevel::Incremental
                && old.as_ref().is_some_and(|old| {
                    old.size == entry.size
                        && old.mtime.seconds == entry.mtime.seconds
                        && old.mtime.nanoseconds == entry.mtime.nanoseconds
                });
            if unchanged && !abbreviated.is_empty() {
                self.ask_xattrs(ndx as i32, entry, abbreviated, Store::Keep)?;
                continue;
            }
            if unchanged {
                self.keep(&entry);
                continue;
            }
            if entry.size == 0 && abbreviated.is_empty() {
                self.store_empty(entry);
                continue;
            }
            let basis = old.as_ref().and_then(|old| basis_of(&entry.path, old.size));
            self.request(ndx as i32, entry, basis, abbreviated)?;
            self.session.conn.pump()?;
            while self.session.conn.pending_output() > HIGH_WATER && !self.outstanding.is_empty() {
                if !self.receive_one()? {
                    return Err(protocol("the sender ended a phase before this side did"));
                }
            }
            if ndx % 256 == 0 {
                job::progress(self.counts.entries, self.counts.bytes);
            }
        }
        self.session.send_done()
    }

    fn store_empty(&mut self, entry: Entry) {
        match sink::begin_file(&entry).and_then(|w| w.finish(false)) {
            Ok(_) => self.counts.entries += 1,
            Err(e) => self.entry_error(&entry.path, &e),
        }
    }

    /// The reference's regular file at the entry's path, if any.
    fn reference_file(&mut self, entry: &Entry) -> Result<Option<Entry>, Error> {
        if !self.has_reference {
            return Ok(None);
        }
        Ok(self
            .index
            .entry(&entry.path)?
            .filter(|old| matches!(old.kind, EntryKind::File)))
    }

    /// Keeps an unchanged file from the reference.
    fn keep(&mut self, entry: &Entry) {
        match sink::keep(entry) {
            Ok(()) => {
                self.counts.entries += 1;
                self.counts.kept += 1;
            }
            Err(e) => self.entry_error(&entry.path, &e),
        }
    }

    /// Queues the request of one file: its index, flags, and the checksums of its basis.
    fn request(
        &mut self,
        ndx: i32,
        entry: Entry,
        basis: Option<Basis>,
        abbreviated: Vec<usize>,
    ) -> Result<(), Error> {
        let mut out = Vec::new();
        self.put_request_head(&mut out, ndx, basis.as_ref(), &abbreviated);
        self.session.conn.send(&out);
        if let Some(b) = &basis {
            self.send_block_sums(b)?;
        }
        self.outstanding.insert(
            ndx,
            Request {
                entry,
                basis,
                abbreviated,
                store: Store::Content,
            },
        );
        Ok(())
    }

    /// A request without its block checksums: index, flags (and the long xattr values
    /// wanted), and the checksum header of the basis (all zero without one).
    fn put_request_head(
        &mut self,
        out: &mut Vec<u8>,
        ndx: i32,
        basis: Option<&Basis>,
        abbreviated: &[usize],
    ) {
        self.session.ndx_out.write(out, ndx);
        if self.session.protocol >= 29 {
            let mut flags = if basis.is_some() {
                ITEM_TRANSFER
            } else {
                ITEM_TRANSFER | ITEM_IS_NEW
            };
            if !abbreviated.is_empty() {
                flags |= ITEM_REPORT_XATTR;
            }
            put_u16(out, flags);
            put_xattr_request(out, abbreviated);
        }
        let (count, block, remainder) = basis.map_or((0, 0, 0), |b| {
            (b.count as i32, b.block as i32, b.remainder as i32)
        });
        for value in [
            count,
            block,
            self.session.checksum.digest_len() as i32,
            remainder,
        ] {
            put_i32(out, value);
        }
    }

    /// Asks the sender for the long xattr values of an entry whose content does not move;
    /// the entry is stored when they arrive.
    fn ask_xattrs(
        &mut self,
        ndx: i32,
        entry: Entry,
        abbreviated: Vec<usize>,
        store: Store,
    ) -> Result<(), Error> {
        let mut out = Vec::new();
        self.session.ndx_out.write(&mut out, ndx);
        put_u16(&mut out, ITEM_REPORT_XATTR);
        put_xattr_request(&mut out, &abbreviated);
        self.session.conn.send(&out);
        self.outstanding.insert(
            ndx,
            Request {
                entry,
                basis: None,
                abbreviated,
                store,
            },
        );
        Ok(())
    }

    fn send_block_sums(&mut self, basis: &Basis) -> Result<(), Error> {
        let algorithm = self.session.checksum;
        let seed = self.session.seed;
        let total = basis.len();
        let mut offset = 0u64;
        let mut out = Vec::new();
        while offset < total {
            let want = basis.read_size().min(total - offset) as u32;
            let data = reference::read(&basis.path, offset, want)?;
            if data.len() != want as usize {
                return Err(Error::Storage(format!(
                    "{}: the reference gave {} bytes at {offset}, {want} expected",
                    String::from_utf8_lossy(&basis.path),
                    data.len()
                )));
            }
            for block in data.chunks(basis.block as usize) {
                put_i32(&mut out, rolling(block) as i32);
                out.extend(algorithm.block_sum(block, seed));
            }
            self.session.conn.send(&out);
            out.clear();
            offset += u64::from(want);
        }
        Ok(())
    }

    /// Reads one answer of the sender: a file, or the end of a phase (`false`).
    fn receive_one(&mut self) -> Result<bool, Error> {
        let ndx = self.session.ndx_in.read(&mut self.session.conn)?;
        // Files the sender could not open come as messages, in order.
        while let Some(gone) = self.session.conn.take_not_sent() {
            if let Some(request) = self.outstanding.remove(&gone) {
                self.counts.errors += 1;
                job::log(
                    job::Level::Error,
                    &format!(
                        "{}: the client could not read it (vanished or unreadable)",
                        String::from_utf8_lossy(&request.entry.path)
                    ),
                );
            }
        }
        if ndx == NDX_DONE {
            return Ok(false);
        }
        if ndx < 0 {
            return Err(protocol(format!("unexpected file index {ndx}")));
        }
        let conn = &mut self.session.conn;
        let iflags = if self.session.protocol >= 29 {
            read_u16(conn)?
        } else {
            ITEM_TRANSFER
        };
        if iflags & ITEM_BASIS_TYPE_FOLLOWS != 0 {
            read_u8(conn)?;
        }
        if iflags & ITEM_XNAME_FOLLOWS != 0 {
            read_vstring(conn, 4096)?;
        }
        let Some(mut request) = self.outstanding.remove(&ndx) else {
            return Err(protocol(format!(
                "the sender answered file index {ndx}, which was not asked for"
            )));
        };
        if self.session.list.xattrs && iflags & ITEM_REPORT_XATTR != 0 {
            read_xattr_values(&mut self.session.conn, &mut request)?;
        }
        if iflags & ITEM_TRANSFER == 0 {
            match request.store {
                Store::Add => self.add(&request.entry),
                Store::Keep => self.keep(&request.entry),
                Store::Content => {
                    return Err(protocol(format!("file index {ndx} came back without data")));
                }
            }
            return Ok(true);
        }
        if request.store != Store::Content {
            return Err(protocol(format!(
                "file index {ndx}: data that was not asked for"
            )));
        }
        self.receive_file(ndx, request)?;
        Ok(true)
    }

    /// The echoed checksum header, the tokens, and the whole-file checksum of one file.
    fn receive_file(&mut self, ndx: i32, request: Request) -> Result<(), Error> {
        let conn = &mut self.session.conn;
        let count = read_i32(conn)?;
        let block = read_i32(conn)?;
        let s2length = read_i32(conn)?;
        let remainder = read_i32(conn)?;
        let expected = request.basis.as_ref().map_or((0, 0, 0), |b| {
            (b.count as i32, b.block as i32, b.remainder as i32)
        });
        if (count, block, remainder) != expected
            || s2length != self.session.checksum.digest_len() as i32
        {
            return Err(protocol(format!(
                "file index {ndx}: the checksum header came back changed"
            )));
        }
        let mut writer = match sink::begin_file(&request.entry) {
            Ok(w) => Some(w),
            Err(e) => {
                self.entry_error(&request.entry.path, &e);
                None
            }
        };
        let mut sum = self.session.checksum.file_sum(self.session.seed);
        let mut window = Window::default();
        let mut written = 0u64;
        let mut literal = 0u64;
        let mut matched = 0u64;
        loop {
            let token = read_i32(&mut self.session.conn)?;
            if token == 0 {
                break;
            }
            let literal_data;
            let data: &[u8] = if token > 0 {
                let len = token as usize;
                if len > MAX_LITERAL {
                    return Err(protocol(format!("a literal run of {len} bytes")));
                }
                literal += len as u64;
                literal_data = read_bytes(&mut self.session.conn, len, MAX_LITERAL)?;
                &literal_data
            } else {
                let index = u32::try_from(-(i64::from(token) + 1))
                    .map_err(|_| protocol("bad block index"))?;
                let Some(basis) = &request.basis else {
                    return Err(protocol(format!(
                        "file index {ndx}: a block reference for a file without basis"
                    )));
                };
                if index >= basis.count {
                    return Err(protocol(format!(
                        "file index {ndx}: block {index} of {}",
                        basis.count
                    )));
                }
                let len = basis.block_len(index);
                matched += u64::from(len);
                window.block(basis, u64::from(index) * u64::from(basis.block), len)?
            };
            sum.update(data);
            written += data.len() as u64;
            if let Some(w) = &writer
                && let Err(e) = w.write(data)
            {
                self.entry_error(&request.entry.path, &e);
                writer = None;
            }
        }
        let theirs = read_bytes(
            &mut self.session.conn,
            self.session.checksum.digest_len(),
            64,
        )?;
        self.counts.literal += literal;
        self.counts.matched += matched;
        if sum.finish() != theirs {
            // Abandon what was written (dropping the writer) and ask again, whole.
            drop(writer);
            if request.basis.is_some() {
                job::log(
                    job::Level::Warning,
                    &format!(
                        "{}: checksum mismatch; asking for it again, whole",
                        String::from_utf8_lossy(&request.entry.path)
                    ),
                );
                // Asked again in the redo phase, without a basis.
                self.redo.push_back(ndx);
                self.outstanding.insert(
                    ndx,
                    Request {
                        entry: request.entry,
                        basis: None,
                        abbreviated: Vec::new(),
                        store: Store::Content,
                    },
                );
            } else {
                self.counts.errors += 1;
                job::log(
                    job::Level::Error,
                    &format!(
                        "{}: checksum mismatch on a whole transfer; left out",
                        String::from_utf8_lossy(&request.entry.path)
                    ),
                );
            }
            return Ok(());
        }
        if let Some(w) = writer {
            let changed = written != request.entry.size;
            if changed {
                job::log(
                    job::Level::Warning,
                    &format!(
                        "{}: {} bytes arrived, the file list said {} (changed while read)",
                        String::from_utf8_lossy(&request.entry.path),
                        written,
                        request.entry.size
                    ),
                );
            }
            match w.finish(changed) {
                Ok(_) => {
                    self.counts.entries += 1;
                    self.counts.bytes += written;
                }
                Err(e) => self.entry_error(&request.entry.path, &e),
            }
        }
        Ok(())
    }

    /// Reads every answer of phase 0, runs the redo phase, the closing phases, the sender's
    /// statistics and the goodbye.
    fn finish_phases(&mut self) -> Result<(), Error> {
        while self.receive_one()? {}
        // Redo phase: files whose checksum failed, asked again without a basis.
        let redo: Vec<i32> = self.redo.drain(..).collect();
        let mut out = Vec::new();
        for ndx in redo {
            self.put_request_head(&mut out, ndx, None, &[]);
        }
        let dones = if self.session.protocol >= 31 { 3 } else { 2 };
        for _ in 0..dones {
            self.session.ndx_out.write(&mut out, NDX_DONE);
        }
        self.session.conn.send(&out);
        self.session.conn.flush()?;
        while self.receive_one()? {}
        // The sender's end of phase 2.
        if self.receive_one()? {
            return Err(protocol("a file arrived after the last phase"));
        }
        if !self.outstanding.is_empty() {
            return Err(protocol(format!(
                "{} requested files never came",
                self.outstanding.len()
            )));
        }
        // Statistics: read, written, size, and (29+) file-list times.
        let conn = &mut self.session.conn;
        let fields = if self.session.protocol >= 29 { 5 } else { 3 };
        for _ in 0..fields {
            if self.session.protocol >= 30 {
                read_varlong(conn, 3)?;
            } else {
                crate::wire::read_longint(conn)?;
            }
        }
        if self.session.protocol >= 31 {
            self.session.expect_done()?;
        }
        self.session.send_done()
    }
}

/// Leaves out xattrs whose values were never fetched.
fn drop_abbreviated(entry: &mut Entry, abbreviated: &[usize]) {
    let mut index = 0;
    entry.xattrs.retain(|_| {
        let keep = !abbreviated.contains(&index);
        index += 1;
        keep
    });
}

/// The generator's xattr request: the 1-based positions wanted, each as the difference from
/// the previous one, then a zero.
fn put_xattr_request(out: &mut Vec<u8>, abbreviated: &[usize]) {
    let mut prior = 0;
    for &i in abbreviated {
        let num = i as i32 + 1;
        put_varint(out, num - prior);
        prior = num;
    }
    if !abbreviated.is_empty() {
        out.push(0);
    }
}

/// The sender's answer to an xattr request: position (as a difference), length, value, and a
/// zero at the end.
fn read_xattr_values(conn: &mut crate::conn::Conn, request: &mut Request) -> Result<(), Error> {
    let mut num = 0i32;
    let mut filled = Vec::new();
    loop {
        let rel = read_varint(conn)?;
        if rel == 0 {
            break;
        }
        num = num
            .checked_add(rel)
            .ok_or_else(|| protocol("xattr position overflow"))?;
        let len =
            usize::try_from(read_varint(conn)?).map_err(|_| protocol("negative xattr length"))?;
        let value = read_bytes(conn, len, MAX_XATTR_VALUE)?;
        let index = usize::try_from(num - 1)
            .ok()
            .filter(|i| request.abbreviated.contains(i))
            .ok_or_else(|| protocol(format!("an xattr value that was not asked for (#{num})")))?;
        if let Some(x) = request.entry.xattrs.get_mut(index) {
            x.value = value;
        }
        filled.push(index);
    }
    if filled.len() != request.abbreviated.len() {
        job::log(
            job::Level::Warning,
            &format!(
                "{}: {} of {} long xattr values arrived; the others are left out",
                String::from_utf8_lossy(&request.entry.path),
                filled.len(),
                request.abbreviated.len()
            ),
        );
        let missing: Vec<usize> = request
            .abbreviated
            .iter()
            .copied()
            .filter(|i| !filled.contains(i))
            .collect();
        drop_abbreviated(&mut request.entry, &missing);
    }
    request.abbreviated.clear();
    Ok(())
}

/// The basis of a file whose reference version has `size` bytes (none when empty).
fn basis_of(path: &[u8], size: u64) -> Option<Basis> {
    let len = i64::try_from(size).ok().filter(|l| *l > 0)?;
    let block = block_length(len);
    Some(Basis {
        path: path.to_vec(),
        block: block as u32,
        count: u32::try_from((len + block - 1) / block).ok()?,
        remainder: (len % block) as u32,
    })
}

/// A window of the basis read from the reference in large pieces: matched blocks mostly
/// come in order, so one read serves many of them.
#[derive(Default)]
struct Window {
    offset: u64,
    data: Vec<u8>,
}

impl Window {
    fn block(&mut self, basis: &Basis, offset: u64, len: u32) -> Result<&[u8], Error> {
        let end = offset + u64::from(len);
        let cached_end = self.offset + self.data.len() as u64;
        if offset < self.offset || end > cached_end {
            let want = basis
                .read_size()
                .min(basis.len() - offset)
                .max(u64::from(len));
            self.data = reference::read(&basis.path, offset, want as u32)?;
            self.offset = offset;
            if (self.data.len() as u64) < u64::from(len) {
                return Err(Error::Storage("the reference gave a short block".into()));
            }
        }
        let start = (offset - self.offset) as usize;
        Ok(&self.data[start..start + len as usize])
    }
}

/// rsync's block length for a basis of `len` bytes (`sum_sizes_sqroot`).
pub fn block_length(len: i64) -> i64 {
    if len <= BLOCK_SIZE * BLOCK_SIZE {
        return BLOCK_SIZE;
    }
    let mut c: i64 = 1;
    let mut l = len;
    loop {
        l >>= 2;
        if l == 0 {
            break;
        }
        c <<= 1;
    }
    if c >= MAX_BLOCK_SIZE {
        return MAX_BLOCK_SIZE;
    }
    let mut block: i64 = 0;
    loop {
        block |= c;
        if len < block * block {
            block &= !c;
        }
        c >>= 1;
        if c < 8 {
            break;
        }
    }
    block.max(BLOCK_SIZE)
}

/// The contract's entry for a file-list entry.
pub fn to_entry(file: &FileEntry, list: &FileList) -> Result<Entry, Error> {
    let kind = match file.kind() {
        S_IFDIR => EntryKind::Directory,
        S_IFREG => EntryKind::File,
        S_IFLNK => EntryKind::Symlink(
            file.target
                .clone()
                .ok_or_else(|| protocol("a symlink without target"))?,
        ),
        S_IFCHR | S_IFBLK => {
            let (major, minor) = file.rdev.unwrap_or((0, 0));
            let number = DeviceNumber { major, minor };
            if file.kind() == S_IFCHR {
                EntryKind::CharDevice(number)
            } else {
                EntryKind::BlockDevice(number)
            }
        }
        S_IFIFO => EntryKind::Fifo,
        S_IFSOCK => EntryKind::Socket,
        other => {
            return Err(protocol(format!(
                "{}: unknown file type {other:o}",
                String::from_utf8_lossy(&file.name)
            )));
        }
    };
    Ok(Entry {
        path: file.share_path(),
        size: if matches!(kind, EntryKind::File) {
            file.size
        } else {
            0
        },
        kind,
        mode: file.mode & 0o7777,
        uid: file.uid,
        gid: file.gid,
        user: list.users.get(&file.uid).cloned(),
        group: list.groups.get(&file.gid).cloned(),
        mtime: Timestamp {
            seconds: file.mtime,
            nanoseconds: file.mtime_nsec,
        },
        xattrs: file
            .xattrs
            .iter()
            .map(|(name, value)| Xattr {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    })
}

fn describe(e: &Error) -> String {
    match e {
        Error::NotGranted(m)
        | Error::Client(m)
        | Error::Protocol(m)
        | Error::Storage(m)
        | Error::Other(m) => m.clone(),
        Error::Cancelled => "cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lengths_follow_rsync() {
        assert_eq!(block_length(10), 700);
        assert_eq!(block_length(700 * 700), 700);
        // sqrt(1 GiB) = 32768.
        assert_eq!(block_length(1 << 30), 32768);
        assert_eq!(block_length(1 << 40), MAX_BLOCK_SIZE);
        let b = block_length(5_000_000);
        assert!(
            b % 8 == 0 && b * b <= 5_000_000 && (b + 8) * (b + 8) > 5_000_000,
            "{b}"
        );
    }
}
