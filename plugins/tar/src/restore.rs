//! A restore: the snapshot walked depth first, each entry written as PAX tar blocks to the
//! standard input of `tar -x` on the client, file content copied inside the host
//! (`snapshot::copy-to`), never through the plugin.
//!
//! Names in the stream are always `./...` relative to the share: the restore target is a
//! prefix inside the share, never an absolute path, and every path is checked again (no `..`,
//! nothing beneath a symlink of the same stream) before it is written.

use hoard_plugin_sdk::transport::hoard::plugin::types::{
    Entry, EntryKind, Error, JobSummary, RestoreJob,
};
use hoard_plugin_sdk::transport::hoard::plugin::{job, snapshot};

use crate::command::{Settings, Verdict};
use crate::convert::{Seen, Tree};
use crate::header::{BLOCK, padded};
use crate::path::{is_under, join, member_path};
use crate::pax::encode;
use crate::process::{TarRun, failed, raw, write_all};

/// Entries fetched from the walk per call.
const WALK_BATCH: u32 = 256;

/// Where restored entries go: the source's paths mapped under the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    source: Vec<u8>,
    target: Option<Vec<u8>>,
}

impl Placement {
    /// From the job's source and target (a leading `/` of the target means the share root).
    pub fn new(source: &[u8], target: &[u8]) -> Result<Placement, String> {
        let source = member_path(source).map_err(|e| format!("restore source: {e}"))?;
        let trimmed: &[u8] = {
            let mut t = target;
            while let Some(rest) = t.strip_prefix(b"/") {
                t = rest;
            }
            t
        };
        let target = member_path(trimmed).map_err(|e| format!("restore target: {e}"))?;
        Ok(Placement {
            source,
            target: if target.is_empty() {
                None
            } else {
                Some(target)
            },
        })
    }

    /// The share-relative place of a snapshot path: itself when restoring in place; else the
    /// target joined with the path from the source's parent (restoring `docs/a` to `old`
    /// gives `old/a/...`; the whole share to `old` gives `old/...`).
    pub fn place(&self, path: &[u8]) -> Option<Vec<u8>> {
        if !is_under(path, &self.source) {
            return None;
        }
        let Some(target) = &self.target else {
            return Some(path.to_vec());
        };
        let base = crate::path::parent(&self.source).unwrap_or(b"");
        let relative = if base.is_empty() {
            path
        } else {
            path.get(base.len() + 1..).unwrap_or(b"")
        };
        Some(join(target, relative))
    }
}

/// The member name of a share-relative path.
pub fn member_name(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        b"./".to_vec()
    } else {
        [b"./".as_slice(), path].concat()
    }
}

/// Restores a subtree of the snapshot to the client.
pub fn run(job: RestoreJob) -> Result<JobSummary, Error> {
    let settings = Settings::parse(&job.settings).map_err(|e| Error::Other(e.0))?;
    let placement = Placement::new(&job.source, &job.target).map_err(Error::Protocol)?;
    let mut argv: Vec<Vec<u8>> = ["tar", "-x", "-f", "-", "--xattrs", "--xattrs-include=*"]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    if settings.numeric_owner {
        argv.push(b"--numeric-owner".to_vec());
    }
    let mut directory = b"--directory=".to_vec();
    directory.extend_from_slice(&job.share);
    argv.push(directory);
    let mut run = TarRun::start(&argv, &[], true, false, "tar -x")?;
    let mut summary = JobSummary {
        entries: 0,
        bytes: 0,
        errors: 0,
        partial: false,
    };
    let mut tree = Tree::default();
    let walk = snapshot::entries(&placement.source)?;
    loop {
        let batch = walk.next(WALK_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            if job::cancelled() {
                return Err(Error::Cancelled);
            }
            run.drain_stderr();
            match write_entry(&mut run, &placement, &mut tree, &entry)? {
                Some(bytes) => {
                    summary.entries += 1;
                    summary.bytes += bytes;
                    if summary.entries.is_multiple_of(256) {
                        job::progress(summary.entries, summary.bytes);
                    }
                }
                None => {
                    summary.errors += 1;
                    summary.partial = true;
                }
            }
        }
    }
    drop(walk);
    let stdin = run
        .stdin()
        .ok_or_else(|| Error::Other("tar's input is closed".into()))?;
    write_all(stdin, &[0u8; 2 * BLOCK], "tar -x")?;
    let (verdict, report, status) = run.finish()?;
    job::progress(summary.entries, summary.bytes);
    summary.errors += report.unreadable;
    match verdict {
        Verdict::Ok => {}
        Verdict::Partial => summary.partial = true,
        // tar -x exits 2 for files it could not create; they are in the log.
        Verdict::Failed
            if report.unreadable + report.other > 0
                && matches!(
                    status,
                    hoard_plugin_sdk::transport::hoard::plugin::process::ExitStatus::Exited(2)
                ) =>
        {
            summary.errors += report.other;
            summary.partial = true;
        }
        Verdict::Failed => return Err(failed("tar -x", status)),
    }
    Ok(summary)
}

/// Writes one entry; `Some(content bytes)` when written, `None` when left out (logged).
fn write_entry(
    run: &mut TarRun,
    placement: &Placement,
    tree: &mut Tree,
    entry: &Entry,
) -> Result<Option<u64>, Error> {
    let shown = String::from_utf8_lossy(&entry.path).into_owned();
    let leave_out = |why: &str| -> Result<Option<u64>, Error> {
        job::log(job::Level::Error, &format!("not restored: {shown}: {why}"));
        Ok(None)
    };
    if member_path(&entry.path).as_deref() != Ok(entry.path.as_slice()) {
        return leave_out("not a clean relative path");
    }
    let Some(place) = placement.place(&entry.path) else {
        return leave_out("outside the restored subtree");
    };
    if let Err(refused) = tree.check_parent(&place) {
        return leave_out(&refused.0);
    }
    let mut content = match entry.kind {
        EntryKind::File => Some((entry.path.clone(), entry.size)),
        _ => None,
    };
    let mut written = entry.clone();
    let mut link = None;
    if let EntryKind::Hardlink(target) = &entry.kind {
        match placement
            .place(target)
            .filter(|t| tree.get(t) == Some(Seen::Other))
        {
            Some(mapped) => link = Some(member_name(&mapped)),
            None => {
                // The target is not part of this restore: the link becomes a copy of it.
                let found = snapshot::entries(target).and_then(|walk| walk.next(1));
                let Some(target_entry) = found.ok().and_then(|batch| batch.into_iter().next())
                else {
                    return leave_out("hard link to an entry outside what is restored");
                };
                if !matches!(target_entry.kind, EntryKind::File) {
                    return leave_out("hard link to something that is not a file");
                }
                written.kind = EntryKind::File;
                written.size = target_entry.size;
                content = Some((target.clone(), target_entry.size));
            }
        }
    }
    if matches!(entry.kind, EntryKind::Socket) {
        return leave_out("sockets cannot be restored through tar");
    }
    let name = member_name(&place);
    let (blocks, skipped) = match encode(&written, &name, link.as_deref()) {
        Ok(encoded) => encoded,
        Err(e) => return leave_out(&e.0),
    };
    for xattr in skipped {
        job::log(
            job::Level::Warning,
            &format!(
                "{shown}: xattr {:?} has a `=` in its name, which tar cannot carry",
                String::from_utf8_lossy(&xattr)
            ),
        );
    }
    let stdin = run
        .stdin()
        .ok_or_else(|| Error::Other("tar's input is closed".into()))?;
    write_all(stdin, &blocks, "tar -x")?;
    let mut bytes = 0;
    if let Some((source, size)) = content {
        let copied = snapshot::copy_to(&source, 0, size, raw(stdin))?;
        if copied != size {
            return Err(Error::Storage(format!(
                "{shown}: {copied} of {size} bytes read from the backup"
            )));
        }
        let padding = (padded(size) - size) as usize;
        write_all(stdin, &[0u8; BLOCK][..padding], "tar -x")?;
        bytes = size;
    }
    tree.insert(
        &place,
        if matches!(entry.kind, EntryKind::Directory) {
            Seen::Directory
        } else {
            Seen::Other
        },
    );
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_keeps_paths() {
        let p = Placement::new(b"docs", b"").unwrap();
        assert_eq!(p.place(b"docs/a"), Some(b"docs/a".to_vec()));
        assert_eq!(p.place(b"docs"), Some(b"docs".to_vec()));
        assert_eq!(p.place(b"other"), None);
        let whole = Placement::new(b"", b"").unwrap();
        assert_eq!(whole.place(b""), Some(Vec::new()));
    }

    #[test]
    fn a_target_takes_the_source_by_its_name() {
        let p = Placement::new(b"home/docs", b"/restored/").unwrap();
        assert_eq!(p.place(b"home/docs"), Some(b"restored/docs".to_vec()));
        assert_eq!(
            p.place(b"home/docs/a/b"),
            Some(b"restored/docs/a/b".to_vec())
        );
        let whole = Placement::new(b"", b"old").unwrap();
        assert_eq!(whole.place(b""), Some(b"old".to_vec()));
        assert_eq!(whole.place(b"x/y"), Some(b"old/x/y".to_vec()));
        assert!(Placement::new(b"", b"../up").is_err());
        assert!(Placement::new(b"/abs", b"").is_err());
    }

    #[test]
    fn names_are_relative() {
        assert_eq!(member_name(b""), b"./");
        assert_eq!(member_name(b"a/b"), b"./a/b");
    }
}
