//! A restore: this side is rsync's sender, the client's `rsync --server` (or daemon module)
//! the receiver. The snapshot's subtree becomes a file list in rsync's order, and every file
//! the receiver asks for goes out as rsync's delta against what the client already has
//! ([`crate::matcher`]), with its checksum. No `--delete` is ever asked for: a restore of
//! one file leaves its neighbours alone.
//!
//! The restored subtree lands in the directory where its parent would be: restoring
//! `docs/a` in place sends `a` into `SHARE/docs/`; with a target `old`, into `SHARE/old/`;
//! the whole share (`.`) into `SHARE/` or `SHARE/old/`.

use std::collections::HashMap;

use hoard_plugin_sdk::transport::hoard::plugin::job;
use hoard_plugin_sdk::transport::hoard::plugin::snapshot;
use hoard_plugin_sdk::transport::hoard::plugin::types::{EntryKind, Error, JobSummary, RestoreJob};

use crate::error::protocol;
use crate::filter::trim_slashes;
use crate::flist::{
    Encoder, FileEntry, MAX_FULL_DATUM, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG,
    S_IFSOCK, sort_order,
};
use crate::matcher::{BlockSums, Matcher};
use crate::session::Session;
use crate::start::{Settings, judge_exit, open};
use crate::wire::{
    NDX_DONE, put_i32, put_u16, put_varint, put_vstring, read_i32, read_u8, read_u16, read_varint,
    read_vstring,
};
use hoard_plugin_sdk::path::{join, parent};

/// Entries fetched from the snapshot walk per call.
const WALK_BATCH: u32 = 512;
/// Bytes read from the snapshot per call.
const READ: u32 = 1 << 20;
/// Most checksum bytes accepted from the receiver for one file.
const MAX_SUMS: usize = 256 << 20;

const ITEM_TRANSFER: u16 = 1 << 15;
const ITEM_REPORT_XATTR: u16 = 1 << 8;
const ITEM_BASIS_TYPE_FOLLOWS: u16 = 1 << 11;
const ITEM_XNAME_FOLLOWS: u16 = 1 << 12;

/// One entry to send, and where its content is in the snapshot.
struct Outgoing {
    entry: FileEntry,
    content: Option<Vec<u8>>,
    hard_link_group: Option<Vec<u8>>,
}

/// The list to send, sorted, with owner and group names.
struct Plan {
    entries: Vec<Outgoing>,
    users: Vec<(u32, String)>,
    groups: Vec<(u32, String)>,
}

/// Where the receiver is pointed: the share, the target (or the source's parent in place).
fn destination(job: &RestoreJob, source: &[u8]) -> Vec<u8> {
    let target = trim_slashes(&job.target);
    let place = if !target.is_empty() {
        target
    } else {
        parent(source).unwrap_or_default().to_vec()
    };
    let share = if job.share.is_empty() {
        b".".to_vec()
    } else {
        job.share.clone()
    };
    join(&share, &place)
}

/// Reads the snapshot subtree at `source` into a sorted plan.
fn plan(source: &[u8]) -> Result<Plan, Error> {
    if source.split(|b| *b == b'/').any(|c| c == b"..") {
        return Err(protocol("restore source with `..`"));
    }
    let base_name: Vec<u8> = source
        .iter()
        .rposition(|b| *b == b'/')
        .map_or(source.to_vec(), |i| source[i + 1..].to_vec());
    let rename = |path: &[u8]| -> Vec<u8> {
        if source.is_empty() {
            if path.is_empty() {
                b".".to_vec()
            } else {
                path.to_vec()
            }
        } else {
            let rest = &path[source.len()..];
            [base_name.as_slice(), rest].concat()
        }
    };
    let walk = snapshot::entries(source)?;
    let mut entries = Vec::new();
    let mut files: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut users = HashMap::new();
    let mut groups = HashMap::new();
    loop {
        let batch = walk.next(WALK_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            if let Some(user) = &entry.user {
                users.insert(entry.uid, user.clone());
            }
            if let Some(group) = &entry.group {
                groups.insert(entry.gid, group.clone());
            }
            let xattrs: Vec<(Vec<u8>, Vec<u8>)> = entry
                .xattrs
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect();
            let (type_bits, size, target, rdev, content, group) = match &entry.kind {
                EntryKind::File => {
                    files.insert(entry.path.clone(), entries.len());
                    (
                        S_IFREG,
                        entry.size,
                        None,
                        None,
                        Some(entry.path.clone()),
                        None,
                    )
                }
                EntryKind::Directory => (S_IFDIR, 0, None, None, None, None),
                EntryKind::Symlink(t) => {
                    (S_IFLNK, t.len() as u64, Some(t.clone()), None, None, None)
                }
                EntryKind::CharDevice(d) => {
                    (S_IFCHR, 0, None, Some((d.major, d.minor)), None, None)
                }
                EntryKind::BlockDevice(d) => {
                    (S_IFBLK, 0, None, Some((d.major, d.minor)), None, None)
                }
                EntryKind::Fifo => (S_IFIFO, 0, None, None, None, None),
                EntryKind::Socket => (S_IFSOCK, 0, None, None, None, None),
                EntryKind::Hardlink(t) => match files.get(t) {
                    // A link to a file of this restore: one group, named by the file.
                    Some(&i) => {
                        let leader: &Outgoing = &entries[i];
                        let size = leader.entry.size;
                        let path = leader.content.clone();
                        (S_IFREG, size, None, None, path, Some(t.clone()))
                    }
                    // A link to a file outside it: the link becomes a copy.
                    None => {
                        let found = snapshot::entries(t).and_then(|w| w.next(1))?;
                        let size = found.first().map_or(0, |e| e.size);
                        (S_IFREG, size, None, None, Some(entry.path.clone()), None)
                    }
                },
            };
            let mut out = Outgoing {
                entry: FileEntry {
                    name: rename(&entry.path),
                    mode: type_bits | (entry.mode & 0o7777),
                    size,
                    mtime: entry.mtime.seconds,
                    mtime_nsec: entry.mtime.nanoseconds,
                    uid: entry.uid,
                    gid: entry.gid,
                    rdev,
                    target,
                    hardlink_leader: None,
                    xattrs,
                    abbreviated: Vec::new(),
                },
                content,
                hard_link_group: group.clone(),
            };
            if let Some(leader_path) = &group
                && let Some(&i) = files.get(leader_path)
            {
                entries[i].hard_link_group = Some(leader_path.clone());
                out.entry.mtime = entries[i].entry.mtime;
                out.entry.mtime_nsec = entries[i].entry.mtime_nsec;
                out.entry.mode = entries[i].entry.mode;
                out.entry.uid = entries[i].entry.uid;
                out.entry.gid = entries[i].entry.gid;
            }
            entries.push(out);
        }
    }
    drop(walk);
    let order = sort_order(entries.iter().map(|o| &o.entry));
    let mut slots: Vec<Option<Outgoing>> = entries.into_iter().map(Some).collect();
    let sorted = order.into_iter().filter_map(|i| slots[i].take()).collect();
    let mut users: Vec<(u32, String)> = users.into_iter().collect();
    users.sort();
    let mut groups: Vec<(u32, String)> = groups.into_iter().collect();
    groups.sort();
    Ok(Plan {
        entries: sorted,
        users,
        groups,
    })
}

/// A restore job from start to end.
pub fn run(job: RestoreJob) -> Result<JobSummary, Error> {
    let settings = Settings::parse(&job.settings, false)?;
    let source = trim_slashes(&job.source);
    let plan = plan(&source)?;
    if plan.entries.is_empty() {
        return Err(protocol(format!(
            "nothing to restore at {}",
            String::from_utf8_lossy(&source)
        )));
    }
    let args = vec![b"--server".to_vec(), settings.wanted.option_cluster()];
    let started = open(&settings, &args, &destination(&job, &source))?;
    let mut session = started.session;
    let mut summary = send(&mut session, &plan)?;
    drop(session);
    judge_exit(started.process, &mut summary)?;
    Ok(summary)
}

/// The sender's side of the protocol: file list, answers to the receiver's requests, the
/// closing phases and the goodbye.
fn send(session: &mut Session, plan: &Plan) -> Result<JobSummary, Error> {
    if session.protocol >= 30 {
        session.conn.start_mux_out();
    }
    session.conn.start_mux_in();
    let options = session.list;
    let mut encoder = Encoder::default();
    let mut out = Vec::new();
    let mut groups: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut inodes: HashMap<Vec<u8>, i64> = HashMap::new();
    for (index, item) in plan.entries.iter().enumerate() {
        let (leader, inode) = match &item.hard_link_group {
            Some(group) => {
                let first = *groups.entry(group.clone()).or_insert(index);
                let next = inodes.len() as i64 + 1;
                let ino = *inodes.entry(group.clone()).or_insert(next);
                (Some(first), Some((0, ino)))
            }
            None => (None, None),
        };
        encoder.put(&mut out, &options, index, &item.entry, leader, inode);
        if out.len() > 64 * 1024 {
            session.conn.send(&out);
            session.conn.pump()?;
            out.clear();
        }
    }
    encoder.finish(&mut out, &options, &plan.users, &plan.groups);
    session.conn.send(&out);
    session.conn.flush()?;

    let mut summary = JobSummary {
        entries: plan.entries.len() as u64,
        bytes: 0,
        errors: 0,
        partial: false,
    };
    let mut literal_total = 0u64;
    let mut matched_total = 0u64;
    let max_phase = if session.protocol >= 29 { 2 } else { 1 };
    let mut phase = 0;
    loop {
        if job::cancelled() {
            return Err(Error::Cancelled);
        }
        let ndx = session.ndx_in.read(&mut session.conn)?;
        if ndx == NDX_DONE {
            phase += 1;
            if phase > max_phase {
                break;
            }
            session.send_done()?;
            continue;
        }
        let item = usize::try_from(ndx)
            .ok()
            .and_then(|i| plan.entries.get(i))
            .ok_or_else(|| protocol(format!("the receiver asked for file index {ndx}")))?;
        let conn = &mut session.conn;
        let iflags = if session.protocol >= 29 {
            read_u16(conn)?
        } else {
            ITEM_TRANSFER
        };
        let basis_type = if iflags & ITEM_BASIS_TYPE_FOLLOWS != 0 {
            Some(read_u8(conn)?)
        } else {
            None
        };
        let xname = if iflags & ITEM_XNAME_FOLLOWS != 0 {
            Some(read_vstring(conn, 4096)?)
        } else {
            None
        };
        // The receiver asks for the long xattr values it lacks.
        let wanted = if options.xattrs && iflags & ITEM_REPORT_XATTR != 0 {
            read_xattr_request(conn, item)?
        } else {
            Vec::new()
        };
        let mut echo = Vec::new();
        session.ndx_out.write(&mut echo, ndx);
        if session.protocol >= 29 {
            put_u16(&mut echo, iflags);
            if let Some(t) = basis_type {
                echo.push(t);
            }
            if let Some(x) = &xname {
                put_vstring(&mut echo, x);
            }
            if options.xattrs && iflags & ITEM_REPORT_XATTR != 0 {
                put_xattr_values(&mut echo, item, &wanted);
            }
        }
        if iflags & ITEM_TRANSFER == 0 {
            session.conn.send(&echo);
            continue;
        }
        if phase == 2 {
            return Err(protocol("a transfer request in the last phase"));
        }
        let Some(content) = &item.content else {
            return Err(protocol(format!("file index {ndx} is not a regular file")));
        };
        // The receiver's checksums of its basis: blocks it already has are not sent again.
        let count = read_i32(conn)?;
        let block = read_i32(conn)?;
        let s2length = read_i32(conn)?;
        let remainder = read_i32(conn)?;
        if count < 0
            || !(0..=(1 << 29)).contains(&block)
            || !(0..=64).contains(&s2length)
            || remainder < 0
            || remainder > block
        {
            return Err(protocol(format!("file index {ndx}: bad checksum header")));
        }
        let sums_len = (count as usize).saturating_mul(4 + s2length as usize);
        if sums_len > MAX_SUMS {
            return Err(protocol(format!(
                "file index {ndx}: {sums_len} bytes of checksums"
            )));
        }
        let sums = BlockSums::read(
            conn,
            count as usize,
            block as usize,
            s2length as usize,
            remainder as usize,
        )?;
        for value in [count, block, s2length, remainder] {
            put_i32(&mut echo, value);
        }
        session.conn.send(&echo);
        let (sent, matched) = send_delta(session, content, item.entry.size, &sums)?;
        literal_total += sent;
        matched_total += matched;
        let sent = sent + matched;
        summary.bytes += sent;
        if summary.bytes > 0 && summary.entries > 0 {
            job::progress(summary.entries, summary.bytes);
        }
    }
    session.send_done()?;
    // The receiver's goodbye (and, from protocol 31, this side's answer and its last one).
    session.expect_done()?;
    if session.protocol >= 31 {
        session.send_done()?;
        session.expect_done()?;
    }
    job::log(
        job::Level::Info,
        &format!(
            "rsync: {literal_total} bytes sent literal, {matched_total} left to the client's own copies; {} bytes sent in all",
            session.conn.bytes_out
        ),
    );
    summary.errors += session.conn.news.errors;
    summary.partial |= session.conn.news.errors > 0;
    Ok(summary)
}

/// The receiver's request for long xattr values: 1-based positions as differences, then 0.
fn read_xattr_request(conn: &mut crate::conn::Conn, item: &Outgoing) -> Result<Vec<usize>, Error> {
    let mut num = 0i32;
    let mut wanted = Vec::new();
    loop {
        let rel = read_varint(conn)?;
        if rel == 0 {
            return Ok(wanted);
        }
        num = num
            .checked_add(rel)
            .ok_or_else(|| protocol("xattr position overflow"))?;
        let index = usize::try_from(num - 1)
            .ok()
            .filter(|i| {
                item.entry
                    .xattrs
                    .get(*i)
                    .is_some_and(|(_, v)| v.len() > MAX_FULL_DATUM)
            })
            .ok_or_else(|| {
                protocol(format!(
                    "the receiver asked for xattr #{num}, which was not abbreviated"
                ))
            })?;
        if wanted.len() > item.entry.xattrs.len() {
            return Err(protocol("an xattr request longer than the set"));
        }
        wanted.push(index);
    }
}

/// The asked-for long values: position (as a difference), length, value; then 0.
fn put_xattr_values(out: &mut Vec<u8>, item: &Outgoing, wanted: &[usize]) {
    let mut prior = 0i32;
    for &i in wanted {
        let num = i as i32 + 1;
        put_varint(out, num - prior);
        prior = num;
        let value = &item.entry.xattrs[i].1;
        put_varint(out, value.len() as i32);
        out.extend_from_slice(value);
    }
    out.push(0);
}

/// Sends a file's content as tokens against the receiver's checksums (literal data and
/// block references), the end token and the file checksum. Returns (literal, matched) bytes.
fn send_delta(
    session: &mut Session,
    path: &[u8],
    size: u64,
    sums: &BlockSums,
) -> Result<(u64, u64), Error> {
    let mut sum = session.checksum.file_sum(session.seed);
    let mut matcher = Matcher::new(sums, session.checksum, session.seed);
    let mut offset = 0u64;
    let mut out = Vec::new();
    while offset < size {
        let want = (size - offset).min(u64::from(READ)) as u32;
        let data = snapshot::read(path, offset, want)?;
        if data.is_empty() {
            return Err(Error::Storage(format!(
                "{}: the backup holds {offset} of {size} bytes",
                String::from_utf8_lossy(path)
            )));
        }
        sum.update(&data);
        matcher.feed(&data, &mut out);
        session.conn.send(&out);
        out.clear();
        session.conn.pump()?;
        offset += data.len() as u64;
    }
    let counts = matcher.finish(&mut out);
    put_i32(&mut out, 0);
    out.extend(sum.finish());
    session.conn.send(&out);
    session.conn.pump()?;
    Ok(counts)
}
