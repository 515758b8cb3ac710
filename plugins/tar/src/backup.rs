//! A backup: GNU tar's stream read member by member and handed to the sink.
//!
//! Full: one archive run of the whole share. Incremental: see [`crate::incremental`], which
//! uses the archive reading here with its directories held back.

use hoard_plugin_sdk::transport::hoard::plugin::types::{
    BackupJob, BackupLevel, Entry, EntryKind, Error, JobSummary,
};
use hoard_plugin_sdk::transport::hoard::plugin::{job, sink};

use crate::command::{Settings, TarOptions, Verdict, selection_list, unescape};
use crate::convert::{Seen, Tree, to_entry};
use crate::header::{
    BLOCK, Extensions, MAX_META, Member, MemberKind, decode, is_zero_block, padded,
    parse_sparse_map,
};
use crate::incremental::{self, Held};
use crate::path::{member_path, parent};
use crate::process::{TarRun, failed};
/// Zeros written per call for the holes of a sparse file.
const ZERO_CHUNK: usize = 64 << 10;

/// A backup in progress: the tree so far and the figures of the summary.
pub struct Backup {
    /// What was emitted so far, for the tree rules.
    pub tree: Tree,
    /// Entries emitted.
    pub entries: u64,
    bytes: u64,
    errors: u64,
    partial: bool,
    /// During an incremental's archive run: its directories, held back.
    pub held: Option<Held>,
}

fn protocol(message: impl std::fmt::Display) -> Error {
    Error::Protocol(message.to_string())
}

impl Backup {
    /// Reports progress now and then.
    pub fn progress(&self) {
        if self.entries.is_multiple_of(256) {
            job::progress(self.entries, self.bytes);
        }
    }

    /// One entry left out: logged, counted, the backup marked partial.
    pub fn refuse(&mut self, message: &str) {
        job::log(job::Level::Error, &format!("left out: {message}"));
        self.errors += 1;
        self.partial = true;
    }

    /// A sink error: a refusal of one entry goes on, anything else ends the job.
    fn sink_result(&mut self, path: &[u8], result: Result<(), Error>) -> Result<bool, Error> {
        match result {
            Ok(()) => Ok(true),
            Err(Error::Protocol(m)) => {
                self.refuse(&format!(
                    "{}: the host refused it: {m}",
                    String::from_utf8_lossy(path)
                ));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads one archive run to its end marker, emitting every member.
    fn read_archive(&mut self, run: &mut TarRun) -> Result<(), Error> {
        let mut ext = Extensions::default();
        let mut block = [0u8; BLOCK];
        loop {
            if job::cancelled() {
                return Err(Error::Cancelled);
            }
            if !run.read_exact(&mut block)? {
                return Err(protocol(
                    "the tar stream ended without its end marker (truncated)",
                ));
            }
            if is_zero_block(&block) {
                return Ok(());
            }
            let member = decode(&block, &mut ext).map_err(protocol)?;
            match member.kind {
                MemberKind::PaxLocal | MemberKind::LongName | MemberKind::LongLink => {
                    let data = read_meta(run, member.data_size)?;
                    match member.kind {
                        MemberKind::PaxLocal => ext.apply_pax(&data).map_err(protocol)?,
                        MemberKind::LongName => ext.apply_long_name(&data),
                        _ => ext.apply_long_link(&data),
                    }
                }
                MemberKind::PaxGlobal => {
                    job::log(job::Level::Debug, "global PAX header ignored");
                    run.skip(padded(member.data_size))?;
                }
                _ => self.member(run, member)?,
            }
        }
    }

    fn member(&mut self, run: &mut TarRun, member: Member) -> Result<(), Error> {
        let shown = String::from_utf8_lossy(&member.name).into_owned();
        let checked = member_path(&member.name)
            .map_err(|e| format!("{shown:?}: {e}"))
            .and_then(|path| {
                self.tree
                    .check_parent(&path)
                    .map(|()| path)
                    .map_err(|r| r.0)
            })
            .and_then(|path| to_entry(&member, path, &self.tree).map_err(|r| r.0));
        let entry = match checked {
            Ok(entry) => entry,
            Err(message) => {
                self.refuse(&message);
                return run.skip(padded(member.data_size));
            }
        };
        let path = entry.path.clone();
        let seen = if matches!(entry.kind, EntryKind::Directory) {
            Seen::Directory
        } else {
            Seen::Other
        };
        if let Some(held) = &mut self.held {
            if seen == Seen::Directory {
                self.tree.insert(&path, seen);
                held.directories.insert(path, entry);
                return run.skip(padded(member.data_size));
            }
            if let Some(dir) = parent(&path) {
                held.touched.insert(dir.to_vec());
            }
        }
        let stored = if member.kind == MemberKind::File && member.data_size > 0 {
            self.file(run, &member, entry)?
        } else {
            let stored = self.sink_result(&path, sink::add(&entry))?;
            run.skip(padded(member.data_size))?;
            stored
        };
        if stored {
            self.tree.insert(&path, seen);
            self.entries += 1;
            self.progress();
        }
        Ok(())
    }

    /// A regular file: content from tar's stdout into the pool inside the host; a sparse
    /// file's holes as zeros written in bounded chunks.
    fn file(&mut self, run: &mut TarRun, member: &Member, entry: Entry) -> Result<bool, Error> {
        let path = entry.path.clone();
        let map = if member.sparse {
            Some(read_sparse_map(run, member)?)
        } else {
            None
        };
        let writer = match sink::begin_file(&entry) {
            Ok(writer) => writer,
            Err(e) => {
                let stored = self.sink_result(&path, Err(e))?;
                let already = map.as_ref().map_or(0, |m| m.map_bytes);
                run.skip(padded(member.data_size) - already)?;
                return Ok(stored);
            }
        };
        let truncated = || {
            protocol(format!(
                "{}: the tar stream ended inside its content (truncated)",
                String::from_utf8_lossy(&path)
            ))
        };
        match &map {
            None => {
                if run.copy_into(&writer, member.data_size)? != member.data_size {
                    return Err(truncated());
                }
            }
            Some(map) => {
                let zeros = vec![0u8; ZERO_CHUNK];
                let mut position = 0u64;
                let fill = |to: u64, position: &mut u64| -> Result<(), Error> {
                    while *position < to {
                        let n = (to - *position).min(ZERO_CHUNK as u64) as usize;
                        writer.write(&zeros[..n])?;
                        *position += n as u64;
                    }
                    Ok(())
                };
                for segment in &map.segments {
                    fill(segment.offset, &mut position)?;
                    if run.copy_into(&writer, segment.length)? != segment.length {
                        return Err(truncated());
                    }
                    position += segment.length;
                }
                fill(member.size, &mut position)?;
            }
        }
        writer.finish(false)?;
        self.bytes += member.data_size;
        run.skip(padded(member.data_size) - member.data_size)?;
        Ok(true)
    }
}

/// The data of a PAX or long-name member, bounded.
fn read_meta(run: &mut TarRun, size: u64) -> Result<Vec<u8>, Error> {
    if size > MAX_META {
        return Err(protocol(format!(
            "extended header of {size} bytes is absurd"
        )));
    }
    let mut data = vec![0u8; padded(size) as usize];
    if !run.read_exact(&mut data)? {
        return Err(protocol(
            "the tar stream ended inside an extended header (truncated)",
        ));
    }
    data.truncate(size as usize);
    Ok(data)
}

fn read_sparse_map(run: &mut TarRun, member: &Member) -> Result<crate::header::SparseMap, Error> {
    let mut text = Vec::new();
    let mut block = [0u8; BLOCK];
    loop {
        if text.len() as u64 >= member.data_size {
            return Err(protocol("sparse map runs past the member's data"));
        }
        if !run.read_exact(&mut block)? {
            return Err(protocol(
                "the tar stream ended inside a sparse map (truncated)",
            ));
        }
        text.extend_from_slice(&block);
        if let Some(map) =
            parse_sparse_map(&text, member.size, member.data_size).map_err(protocol)?
        {
            return Ok(map);
        }
    }
}

impl Backup {
    /// Adds a directory held back during an incremental; `false` when the host refused it.
    pub fn add_directory(&mut self, entry: Entry) -> Result<bool, Error> {
        let path = entry.path.clone();
        let stored = self.sink_result(&path, sink::add(&entry))?;
        if stored {
            self.progress();
        }
        Ok(stored)
    }

    /// Records an entry kept from the reference.
    pub fn note_kept(&mut self, path: &[u8]) {
        self.tree.insert(path, Seen::Other);
        self.entries += 1;
        self.progress();
    }
}

/// Runs tar once and reads its archive. With `unchanged`, the run is a verbose `--newer` one
/// and the names it left out as unchanged are returned (share-relative, directories aside);
/// `None` when some of tar's stderr was lost, so that they may be incomplete (and always
/// without `unchanged`).
pub fn archive_run(
    backup: &mut Backup,
    argv: &[Vec<u8>],
    list: &[u8],
    what: &'static str,
    unchanged: bool,
) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let mut run = TarRun::start(argv, list, false, false, what)?;
    if unchanged {
        run.collect_unchanged();
    }
    let read = backup.read_archive(&mut run);
    if let Err(e) = read {
        // Collect tar's own words about it before failing, when it has any.
        run.drain_stderr();
        return Err(e);
    }
    let (verdict, report, status) = run.finish()?;
    let escaped = run.take_unchanged();
    backup.errors += report.unreadable;
    match verdict {
        Verdict::Ok => {}
        Verdict::Partial => backup.partial = true,
        Verdict::Failed => return Err(failed(what, status)),
    }
    Ok(escaped.map(|escaped| {
        let mut names = Vec::new();
        for name in escaped {
            push_listed(&mut names, &name);
        }
        names
    }))
}

/// A listing run (the fallback of an incremental whose verbose run lost some of stderr):
/// every name under the selection.
pub fn listing(options: &TarOptions, list: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut run = TarRun::start(&options.listing_argv(), list, false, true, "tar listing")?;
    let mut names = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(data) = run.read_some(64 << 10)? {
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            push_listed(&mut names, &line[..line.len() - 1]);
        }
    }
    if !pending.is_empty() {
        push_listed(&mut names, &pending);
    }
    let (verdict, _, status) = run.finish()?;
    if verdict == Verdict::Failed {
        return Err(failed("tar listing", status));
    }
    Ok(names)
}

fn push_listed(names: &mut Vec<Vec<u8>>, line: &[u8]) {
    let raw = unescape(line);
    match member_path(&raw) {
        // Directories come with every archive run; only the other names matter.
        Ok(path) if !raw.ends_with(b"/") && !path.is_empty() => names.push(path),
        Ok(_) => {}
        Err(e) => job::log(
            job::Level::Warning,
            &format!("listing: {:?} ignored: {e}", String::from_utf8_lossy(&raw)),
        ),
    }
}

/// Backs up one share.
pub fn run(job: BackupJob) -> Result<JobSummary, Error> {
    let settings = Settings::parse(&job.settings).map_err(|e| Error::Other(e.0))?;
    let options = TarOptions {
        share: job.share.clone(),
        one_file_system: job.one_file_system,
        sparse: settings.sparse,
        xattrs: settings.xattrs,
        excludes: job.excludes.clone(),
    };
    let list = selection_list(&job.includes);
    let mut backup = Backup {
        tree: Tree::default(),
        entries: 0,
        bytes: 0,
        errors: 0,
        partial: false,
        held: None,
    };
    let newer = match (job.level, job.has_reference, settings.newer_than()) {
        (BackupLevel::Incremental, true, Some(newer)) => Some(newer),
        (BackupLevel::Incremental, _, _) => {
            job::log(
                job::Level::Warning,
                "incremental asked without a reference or its `reference-started` setting: reading everything",
            );
            None
        }
        (BackupLevel::Full, _, _) => None,
    };
    match newer {
        None => drop(archive_run(
            &mut backup,
            &options.archive_argv(None),
            &list,
            "tar",
            false,
        )?),
        Some(newer) => incremental::run(&mut backup, &options, &list, newer)?,
    }
    job::progress(backup.entries, backup.bytes);
    Ok(JobSummary {
        entries: backup.entries,
        bytes: backup.bytes,
        errors: backup.errors,
        partial: backup.partial,
    })
}
