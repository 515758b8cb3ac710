//! An incremental backup: what changed comes from tar, what did not is kept from the
//! reference, a whole unchanged directory at a time where possible.
//!
//! 1. One archive run with `--newer` sends what changed since the reference started, and
//!    every directory; run verbose, tar names on its stderr every other name it left out as
//!    unchanged, so one walk of the client's tree lists everything. Changed entries go to the
//!    sink as they arrive; directories are held back.
//! 2. The directories are walked bottom-up, each compared with the reference (one
//!    `list-directory` per directory). A directory is *unchanged* when its own metadata, the
//!    names in it and the kind of each (directory or not) are the reference's, nothing in it
//!    came from the archive run, it holds no hard link, and every directory below it is
//!    unchanged. The highest unchanged directories are kept whole with one `keep-tree` each;
//!    in the others the directory entry is added and each unchanged name kept one by one.
//!    Should some of tar's stderr be lost (a host keeps a bounded amount of unread stderr),
//!    a listing run names every non-directory instead.
//! 3. Names tar left out as unchanged (or listed) but the reference lacks (renamed or moved
//!    files whose times tar does not see as new) are fetched by a last archive run of exactly
//!    those names.
//!
//! Whatever tar named neither way (deleted on the client) is simply not in the new backup. A
//! no-change incremental of a share costs one tar run, one `list-directory` per directory and
//! a single `keep-tree`.

use std::collections::{BTreeMap, HashMap, HashSet};

use hoard_plugin_sdk::transport::hoard::plugin::types::{Entry, EntryKind, Error};
use hoard_plugin_sdk::transport::hoard::plugin::{job, reference, sink};

use crate::backup::{Backup, archive_run, listing};
use crate::command::{TarOptions, fetch_lists};
use crate::path::parent;

/// Largest file list of one fetch run: well under a pipe's buffer, so writing it never waits
/// on tar.
const FETCH_LIST_BYTES: usize = 48 << 10;

/// What the archive run of an incremental leaves for the comparison with the reference.
#[derive(Default)]
pub struct Held {
    /// Directories the archive run sent, not yet given to the sink.
    pub directories: BTreeMap<Vec<u8>, Entry>,
    /// Directories with a non-directory member of the archive run directly in them.
    pub touched: HashSet<Vec<u8>>,
}

/// Runs an incremental backup of one share: content changed after `newer` (seconds since the
/// epoch) is read, the rest kept from the reference.
pub fn run(
    backup: &mut Backup,
    options: &TarOptions,
    list: &[u8],
    newer: i64,
) -> Result<(), Error> {
    job::log(
        job::Level::Info,
        &format!("incremental: content changed after {newer} (seconds since the epoch)"),
    );
    backup.held = Some(Held::default());
    let unchanged = archive_run(
        backup,
        &options.archive_argv(Some(newer)),
        list,
        "tar",
        true,
    )?;
    let held = backup.held.take().unwrap_or_default();
    let listed = match unchanged {
        Some(names) => names,
        None => {
            // Without every name tar left out, unchanged files would look deleted.
            job::log(
                job::Level::Warning,
                "incremental: some of tar's messages were lost, so the unchanged names are incomplete: listing the share again",
            );
            listing(options, list)?
        }
    };

    let mut merge = Merge::new(backup, held, listed);
    merge.walk()?;
    let Merge {
        fetch,
        links,
        kept,
        kept_trees,
        ..
    } = merge;
    let mut fetch = fetch;
    for entry in links {
        let path = entry.path.clone();
        if !keep(backup, entry)? {
            fetch.push(path);
        }
    }
    job::log(
        job::Level::Info,
        &format!(
            "incremental: {kept} unchanged entries kept from the reference ({kept_trees} whole directories), {} fetched again",
            fetch.len()
        ),
    );
    for batch in fetch_lists(&fetch, FETCH_LIST_BYTES) {
        archive_run(backup, &options.fetch_argv(), &batch, "tar fetch", false)?;
    }
    Ok(())
}

/// The last component of `path`.
fn name_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Whether a directory's own metadata is the same in both entries (what `keep-tree` would
/// take from the reference).
fn same_directory(new: &Entry, old: &Entry) -> bool {
    matches!(old.kind, EntryKind::Directory) && new.same_metadata(old)
}

/// One directory on the walk's stack.
struct Frame {
    path: Vec<u8>,
    /// Its entry from the archive run.
    entry: Entry,
    /// The reference's entries directly in it, sorted by name; `None` when the reference has
    /// no directory here.
    reference: Option<Vec<Entry>>,
    /// Whether the reference's entry for the directory itself has the same metadata.
    same_metadata: bool,
    /// Its subdirectories from the archive run, in order, and how many were visited.
    subdirectories: Vec<Vec<u8>>,
    next: usize,
    /// Subdirectories found unchanged (kept whole unless this one is too).
    unchanged: Vec<(Vec<u8>, u64)>,
    /// Some subdirectory changed.
    changed_below: bool,
}

/// The comparison of the held directories and the listing with the reference.
struct Merge<'b> {
    backup: &'b mut Backup,
    held: Held,
    /// The names tar left out as unchanged (or, after a lost stderr, every listed name), by
    /// parent directory.
    listed: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Subdirectories of each held directory.
    children: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    fetch: Vec<Vec<u8>>,
    links: Vec<Entry>,
    kept: u64,
    kept_trees: u64,
}

impl<'b> Merge<'b> {
    fn new(backup: &'b mut Backup, held: Held, names: Vec<Vec<u8>>) -> Self {
        let mut listed: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        let mut fetch = Vec::new();
        for path in names {
            if backup.tree.get(&path).is_some() {
                continue;
            }
            if let Err(refused) = backup.tree.check_parent(&path) {
                backup.refuse(&refused.0);
                continue;
            }
            match parent(&path) {
                Some(dir) if held.directories.contains_key(dir) => {
                    listed.entry(dir.to_vec()).or_default().push(path);
                }
                // Its directory appeared after the archive run read it: read it now.
                _ => fetch.push(path),
            }
        }
        let mut children: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for path in held.directories.keys() {
            if let Some(dir) = parent(path)
                && held.directories.contains_key(dir)
            {
                children.entry(dir.to_vec()).or_default().push(path.clone());
            }
        }
        Self {
            backup,
            held,
            listed,
            children,
            fetch,
            links: Vec::new(),
            kept: 0,
            kept_trees: 0,
        }
    }

    /// Held directories with no held parent: the share root, or each included subtree.
    fn tops(&self) -> Vec<Vec<u8>> {
        self.held
            .directories
            .keys()
            .filter(|path| parent(path).is_none_or(|dir| !self.held.directories.contains_key(dir)))
            .cloned()
            .collect()
    }

    fn walk(&mut self) -> Result<(), Error> {
        for top in self.tops() {
            let old = reference::lookup(&top)?;
            let mut stack = vec![self.frame(top, old.as_ref())?];
            while let Some(frame) = stack.last_mut() {
                if job::cancelled() {
                    return Err(Error::Cancelled);
                }
                if frame.next < frame.subdirectories.len() {
                    let child = frame.subdirectories[frame.next].clone();
                    frame.next += 1;
                    let old = frame.reference.as_ref().and_then(|entries| {
                        entries
                            .binary_search_by(|e| name_of(&e.path).cmp(name_of(&child)))
                            .ok()
                            .map(|i| entries[i].clone())
                    });
                    let next = self.frame(child, old.as_ref())?;
                    stack.push(next);
                    continue;
                }
                let Some(frame) = stack.pop() else { break };
                let unchanged = self.unchanged(&frame);
                match (unchanged, stack.last_mut()) {
                    (Some(count), Some(up)) => up.unchanged.push((frame.path, count)),
                    (Some(count), None) => self.keep_tree(&frame.path, count)?,
                    (None, up) => {
                        if let Some(up) = up {
                            up.changed_below = true;
                        }
                        self.emit(frame)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame for held directory `path`, whose reference entry is `old`.
    fn frame(&mut self, path: Vec<u8>, old: Option<&Entry>) -> Result<Frame, Error> {
        let entry = self
            .held
            .directories
            .remove(&path)
            .ok_or_else(|| Error::Other("a held directory went missing".into()))?;
        let is_directory = old.is_some_and(|o| matches!(o.kind, EntryKind::Directory));
        let reference = if is_directory {
            Some(reference::list_directory(&path)?)
        } else {
            None
        };
        Ok(Frame {
            same_metadata: old.is_some_and(|o| same_directory(&entry, o)),
            entry,
            reference,
            subdirectories: self.children.remove(&path).unwrap_or_default(),
            next: 0,
            unchanged: Vec::new(),
            changed_below: false,
            path,
        })
    }

    /// The number of entries in the directory's subtree when it is unchanged.
    fn unchanged(&self, frame: &Frame) -> Option<u64> {
        let reference = frame.reference.as_ref()?;
        if !frame.same_metadata || frame.changed_below || self.held.touched.contains(&frame.path) {
            return None;
        }
        let mut old_files = Vec::new();
        let mut old_directories = Vec::new();
        for entry in reference {
            match entry.kind {
                EntryKind::Directory => old_directories.push(name_of(&entry.path)),
                EntryKind::Hardlink(_) => return None,
                _ => old_files.push(name_of(&entry.path)),
            }
        }
        let mut new_files: Vec<&[u8]> = self
            .listed
            .get(&frame.path)
            .map(|names| names.iter().map(|p| name_of(p)).collect())
            .unwrap_or_default();
        let mut new_directories: Vec<&[u8]> =
            frame.subdirectories.iter().map(|p| name_of(p)).collect();
        new_files.sort_unstable();
        new_directories.sort_unstable();
        // The reference lists by name already; sort anyway, its order is not ours to assume.
        old_files.sort_unstable();
        old_directories.sort_unstable();
        if new_files != old_files || new_directories != old_directories {
            return None;
        }
        let below: u64 = frame.unchanged.iter().map(|(_, n)| n).sum();
        Some(reference.len() as u64 + below)
    }

    fn keep_tree(&mut self, path: &[u8], count: u64) -> Result<(), Error> {
        match sink::keep_tree(path) {
            Ok(()) => {
                self.kept += count;
                self.kept_trees += 1;
                self.backup.entries += count;
                self.backup.progress();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A changed directory: its entry, its unchanged subdirectories whole, and each of its
    /// other names kept or fetched.
    fn emit(&mut self, frame: Frame) -> Result<(), Error> {
        let Frame {
            path,
            entry,
            reference,
            unchanged,
            ..
        } = frame;
        if self.backup.add_directory(entry)? {
            self.backup.entries += 1;
        }
        for (directory, count) in unchanged {
            self.keep_tree(&directory, count)?;
        }
        let names = self.listed.remove(&path).unwrap_or_default();
        for name in names {
            let old = reference.as_ref().and_then(|entries| {
                entries
                    .binary_search_by(|e| name_of(&e.path).cmp(name_of(&name)))
                    .ok()
                    .map(|i| &entries[i])
            });
            match old {
                Some(old) if matches!(old.kind, EntryKind::Hardlink(_)) => {
                    self.links.push(old.clone())
                }
                Some(old) if !matches!(old.kind, EntryKind::Directory) => {
                    if keep(self.backup, old.clone())? {
                        self.kept += 1;
                    } else {
                        self.fetch.push(name);
                    }
                }
                _ => self.fetch.push(name),
            }
        }
        Ok(())
    }
}

/// Keeps one unchanged entry of the reference; `false` when the host refused it.
fn keep(backup: &mut Backup, entry: Entry) -> Result<bool, Error> {
    let path = entry.path.clone();
    match sink::keep(&entry) {
        Ok(()) => {
            backup.note_kept(&path);
            Ok(true)
        }
        Err(Error::Protocol(m)) => {
            job::log(
                job::Level::Debug,
                &format!(
                    "{}: not kept ({m}), fetched again",
                    String::from_utf8_lossy(&path)
                ),
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
