//! fsck: re-hash stored objects (all or a sample), then check every snapshot's references and
//! name the snapshots and paths that damaged or missing objects affect. Garbage (objects no
//! snapshot references, pack files the index does not know) is reported but is not damage.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::entry::join;
use crate::error::{BytePath, PoolError};
use crate::gc::packs_on_disk;
use crate::index::{Index, ObjectTable};
use crate::inflight::lock;
use crate::object::ObjectId;
use crate::pack::{ObjectLocation, PackId, decode_record, read_record};
use crate::pool::PoolInner;
use crate::snapshot::{SnapshotId, catalog};
use crate::tree::{Content, Node};

/// How fsck runs.
#[derive(Debug, Clone)]
pub struct FsckOptions {
    /// Percentage (0..=100) of objects to re-hash, chosen at random (default 100).
    pub sample_percent: u8,
    /// Check every snapshot's tree and references (default true).
    pub check_snapshots: bool,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            sample_percent: 100,
            check_snapshots: true,
        }
    }
}

/// An object that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedObject {
    /// The object.
    pub id: ObjectId,
    /// The pack holding it.
    pub pack: PackId,
    /// What is wrong.
    pub detail: String,
}

/// A path of a snapshot that cannot be restored whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedPath {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The file, or the directory whose listing is lost.
    pub path: BytePath,
    /// The damaged or missing object.
    pub object: ObjectId,
}

/// What fsck found.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Objects re-hashed.
    pub objects_checked: u64,
    /// Plain bytes re-hashed.
    pub bytes_checked: u64,
    /// Packs read.
    pub packs_checked: u64,
    /// Snapshots whose trees were checked.
    pub snapshots_checked: u64,
    /// Objects whose bytes are wrong or unreadable.
    pub corrupt: Vec<DamagedObject>,
    /// Objects referenced by a snapshot but absent from the index.
    pub missing: Vec<ObjectId>,
    /// Snapshot paths affected by corrupt or missing objects.
    pub damaged_paths: Vec<DamagedPath>,
    /// Snapshots with at least one damaged path.
    pub damaged_snapshots: Vec<SnapshotId>,
    /// Catalog records that cannot be read.
    pub catalog_errors: Vec<String>,
    /// Indexed objects no snapshot references (garbage for GC; not damage).
    pub unreferenced_objects: u64,
    /// Pack files on disk the index does not know (left by killed writers; GC deletes them).
    pub orphan_packs: Vec<PackId>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl FsckReport {
    /// True when nothing is corrupt, missing or damaged (garbage is allowed).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.damaged_paths.is_empty()
            && self.catalog_errors.is_empty()
    }
}

pub(crate) fn run(pool: &PoolInner, opts: &FsckOptions) -> Result<FsckReport, PoolError> {
    // GC moves and deletes packs: do not race it.
    let _no_gc = lock(&pool.gc_running);
    let began = Instant::now();
    let mut report = FsckReport::default();

    let mut by_pack: HashMap<PackId, Vec<(ObjectId, ObjectLocation)>> = HashMap::new();
    let mut indexed: u64 = 0;
    pool.index.for_each_object(|id, loc| {
        indexed += 1;
        if opts.sample_percent >= 100 || fastrand::u8(0..100) < opts.sample_percent {
            by_pack.entry(loc.pack).or_default().push((id, loc));
        }
        Ok(())
    })?;
    let mut packs: Vec<PackId> = by_pack.keys().copied().collect();
    packs.sort();
    for pack in packs {
        let mut objects = by_pack.remove(&pack).unwrap_or_default();
        objects.sort_by_key(|(_, l)| l.offset);
        report.packs_checked += 1;
        let file = match pool.pack_file(pack) {
            Ok(f) => f,
            Err(e) => {
                for (id, _) in objects {
                    report.corrupt.push(DamagedObject {
                        id,
                        pack,
                        detail: format!("pack file cannot be opened: {e}"),
                    });
                }
                continue;
            }
        };
        for (id, loc) in objects {
            report.objects_checked += 1;
            match read_record(&file, &id, &loc).and_then(|r| decode_record(&r, &id, &loc)) {
                Ok(plain) => report.bytes_checked += plain.len() as u64,
                Err(e) => report.corrupt.push(DamagedObject {
                    id,
                    pack,
                    detail: match e {
                        PoolError::CorruptObject { detail, .. } => detail,
                        other => other.to_string(),
                    },
                }),
            }
        }
    }

    let known: HashSet<PackId> = pool.index.packs()?.into_iter().map(|(p, _, _)| p).collect();
    for (pack, _) in packs_on_disk(pool)? {
        if !known.contains(&pack) {
            report.orphan_packs.push(pack);
        }
    }

    if opts.check_snapshots {
        let bad: HashSet<ObjectId> = report.corrupt.iter().map(|d| d.id).collect();
        let mut checker = Checker {
            pool,
            table: pool.index.objects()?,
            bad,
            clean: HashMap::new(),
            reached: HashSet::new(),
            missing: HashSet::new(),
        };
        let records = match catalog::list(&pool.index, None) {
            Ok(r) => r,
            Err(e) => {
                report.catalog_errors.push(e.to_string());
                Vec::new()
            }
        };
        for record in &records {
            report.snapshots_checked += 1;
            let mut paths = Vec::new();
            checker.collect(&record.root, Vec::new(), &mut paths)?;
            if !paths.is_empty() {
                report.damaged_snapshots.push(record.info.id.clone());
            }
            for (path, object) in paths {
                report.damaged_paths.push(DamagedPath {
                    snapshot: record.info.id.clone(),
                    path: BytePath(path),
                    object,
                });
            }
        }
        report.unreferenced_objects = indexed.saturating_sub(
            checker
                .reached
                .iter()
                .filter(|id| !checker.missing.contains(id))
                .count() as u64,
        );
        let mut missing: Vec<ObjectId> = checker.missing.into_iter().collect();
        missing.sort();
        report.missing = missing;
    }
    report.seconds = began.elapsed().as_secs_f64();
    tracing::info!(
        clean = report.is_clean(),
        objects = report.objects_checked,
        corrupt = report.corrupt.len(),
        missing = report.missing.len(),
        "fsck done"
    );
    Ok(report)
}

/// Walks snapshot trees once per distinct directory object, remembering which are clean.
struct Checker<'a> {
    pool: &'a PoolInner,
    table: ObjectTable,
    bad: HashSet<ObjectId>,
    clean: HashMap<ObjectId, bool>,
    reached: HashSet<ObjectId>,
    missing: HashSet<ObjectId>,
}

impl Checker<'_> {
    /// True when the object is present and not known corrupt.
    fn object_ok(&mut self, id: &ObjectId) -> Result<bool, PoolError> {
        self.reached.insert(*id);
        if self.bad.contains(id) {
            return Ok(false);
        }
        if self.missing.contains(id) {
            return Ok(false);
        }
        if Index::lookup_in(&self.table, id)?.is_none() {
            self.missing.insert(*id);
            return Ok(false);
        }
        Ok(true)
    }

    /// True when the directory object and everything below it are sound.
    fn tree_clean(&mut self, id: &ObjectId) -> Result<bool, PoolError> {
        if let Some(c) = self.clean.get(id) {
            return Ok(*c);
        }
        let mut clean = self.object_ok(id)?;
        if clean {
            match self.pool.load_tree(id) {
                Ok(tree) => {
                    for n in &tree.nodes {
                        let ok = self.node_clean(n)?;
                        clean &= ok;
                    }
                }
                Err(_) => clean = false,
            }
        }
        self.clean.insert(*id, clean);
        Ok(clean)
    }

    fn node_clean(&mut self, node: &Node) -> Result<bool, PoolError> {
        match &node.content {
            Content::Tree(t) => self.tree_clean(&t.id),
            Content::File(chunks) => {
                let mut ok = true;
                for c in chunks {
                    ok &= self.object_ok(&c.id)?;
                }
                Ok(ok)
            }
            Content::None => Ok(true),
        }
    }

    /// Lists the damaged paths at and below `node` (whose full path is `path`).
    fn collect(
        &mut self,
        node: &Node,
        path: Vec<u8>,
        out: &mut Vec<(Vec<u8>, ObjectId)>,
    ) -> Result<(), PoolError> {
        match &node.content {
            Content::File(chunks) => {
                for c in chunks {
                    if !self.object_ok(&c.id)? {
                        out.push((path, c.id));
                        return Ok(());
                    }
                }
            }
            Content::Tree(t) => {
                if self.tree_clean(&t.id)? {
                    return Ok(());
                }
                let tree = match self.object_ok(&t.id)? {
                    true => self.pool.load_tree(&t.id).ok(),
                    false => None,
                };
                match tree {
                    None => out.push((path, t.id)),
                    Some(tree) => {
                        for n in &tree.nodes {
                            self.collect(n, join(&path, n.name()), out)?;
                        }
                    }
                }
            }
            Content::None => {}
        }
        Ok(())
    }
}
