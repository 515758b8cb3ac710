//! The reference backup as the generator needs it: entries looked up by path through a
//! small cache of directory listings (one host call per directory, not per file), and, for
//! an incremental, the directories whose whole subtree is unchanged, which are kept from the
//! reference in one call instead of entry by entry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use hoard_plugin_sdk::path::parent;
use hoard_plugin_sdk::transport::hoard::plugin::reference;
use hoard_plugin_sdk::transport::hoard::plugin::types::{Entry, EntryKind, Error};

/// Directory listings kept at once.
const CACHED_DIRECTORIES: usize = 256;

type Listing = Rc<HashMap<Vec<u8>, Entry>>;

/// Cached listings of the reference.
#[derive(Default)]
pub struct ReferenceIndex {
    listings: HashMap<Vec<u8>, Listing>,
    order: VecDeque<Vec<u8>>,
    root: Option<Option<Entry>>,
}

/// The directory `path` is in (the root for the root itself).
fn parent_of(path: &[u8]) -> &[u8] {
    parent(path).unwrap_or_default()
}

impl ReferenceIndex {
    /// The reference's entries directly in `dir`, by path.
    pub fn listing(&mut self, dir: &[u8]) -> Result<Listing, Error> {
        if let Some(found) = self.listings.get(dir) {
            return Ok(found.clone());
        }
        let entries = match reference::list_directory(dir) {
            Ok(entries) => entries,
            // Not a directory there (or not there at all): nothing inside.
            Err(Error::Storage(_) | Error::Protocol(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let listing: Listing = Rc::new(entries.into_iter().map(|e| (e.path.clone(), e)).collect());
        if self.order.len() >= CACHED_DIRECTORIES
            && let Some(old) = self.order.pop_front()
        {
            self.listings.remove(&old);
        }
        self.order.push_back(dir.to_vec());
        self.listings.insert(dir.to_vec(), listing.clone());
        Ok(listing)
    }

    /// The reference's entry at `path`.
    pub fn entry(&mut self, path: &[u8]) -> Result<Option<Entry>, Error> {
        if path.is_empty() {
            if self.root.is_none() {
                self.root = Some(reference::lookup(path)?);
            }
            return Ok(self.root.clone().flatten());
        }
        Ok(self.listing(parent_of(path))?.get(path).cloned())
    }
}

/// Whether two entries record the same thing (xattrs compared as sets).
pub fn same_entry(a: &Entry, b: &Entry) -> bool {
    let kind = match (&a.kind, &b.kind) {
        (EntryKind::File, EntryKind::File)
        | (EntryKind::Directory, EntryKind::Directory)
        | (EntryKind::Fifo, EntryKind::Fifo)
        | (EntryKind::Socket, EntryKind::Socket) => true,
        (EntryKind::Symlink(x), EntryKind::Symlink(y))
        | (EntryKind::Hardlink(x), EntryKind::Hardlink(y)) => x == y,
        (EntryKind::CharDevice(x), EntryKind::CharDevice(y))
        | (EntryKind::BlockDevice(x), EntryKind::BlockDevice(y)) => {
            (x.major, x.minor) == (y.major, y.minor)
        }
        _ => false,
    };
    kind && a.path == b.path
        && (!matches!(a.kind, EntryKind::File) || a.size == b.size)
        && a.same_metadata(b)
}

/// The directories (share paths) whose entry and whole subtree are as in the reference.
/// `entries` are the file list's entries as the contract's entries, in rsync's sorted order
/// (a directory before its content).
pub fn unchanged_directories(
    index: &mut ReferenceIndex,
    entries: &[Entry],
) -> Result<HashSet<Vec<u8>>, Error> {
    let mut children: HashMap<&[u8], Vec<&Entry>> = HashMap::new();
    for entry in entries.iter().filter(|e| !e.path.is_empty()) {
        children
            .entry(parent_of(&entry.path))
            .or_default()
            .push(entry);
    }
    let mut same: HashSet<Vec<u8>> = HashSet::new();
    // Deeper directories come later in the sorted order: walk it backwards.
    for dir in entries
        .iter()
        .rev()
        .filter(|e| matches!(e.kind, EntryKind::Directory))
    {
        let Some(old) = index.entry(&dir.path)? else {
            continue;
        };
        if !same_entry(dir, &old) {
            continue;
        }
        let listing = index.listing(&dir.path)?;
        let mine = children
            .get(dir.path.as_slice())
            .map_or(&[][..], Vec::as_slice);
        if mine.len() != listing.len() {
            continue;
        }
        let all_same = mine.iter().all(|child| {
            listing
                .get(&child.path)
                .is_some_and(|old| same_entry(child, old))
                && (!matches!(child.kind, EntryKind::Directory) || same.contains(&child.path))
        });
        if all_same {
            same.insert(dir.path.clone());
        }
    }
    Ok(same)
}
