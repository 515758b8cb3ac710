//! Garbage collection: mark every object reachable from committed snapshots and from running
//! writers' claims, sweep the rest from the index, delete empty and orphaned pack files, and
//! repack packs whose live fraction fell below a threshold. Safe while backups run.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use redb::ReadableTable;

use crate::error::PoolError;
use crate::index::{OBJECTS, PACKS};
use crate::inflight::lock;
use crate::object::ObjectId;
use crate::pack::{ObjectLocation, PackId, PackWriter, decode_record, read_record};
use crate::pool::PoolInner;
use crate::snapshot::SnapshotId;
use crate::snapshot::catalog;
use crate::tree::{Content, Node};

/// How GC runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Packs whose live bytes are below this fraction of their size are rewritten (default 0.5).
    pub repack_threshold: f64,
    /// Report what would be reclaimed without changing anything.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            repack_threshold: 0.5,
            dry_run: false,
        }
    }
}

/// What a GC run found and reclaimed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// Snapshots marked from.
    pub snapshots: u64,
    /// Objects found live.
    pub live_objects: u64,
    /// Objects removed from the index.
    pub swept_objects: u64,
    /// Stored bytes of the removed objects.
    pub swept_bytes: u64,
    /// Packs deleted because nothing in them was live.
    pub packs_deleted: u64,
    /// Packs rewritten (their live objects copied to new packs).
    pub packs_repacked: u64,
    /// Pack files no index entry referred to (left by killed writers), deleted.
    pub orphan_packs_deleted: u64,
    /// Bytes of pack files before.
    pub bytes_before: u64,
    /// Bytes of pack files after.
    pub bytes_after: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl GcReport {
    /// Bytes of disk given back.
    pub fn reclaimed_bytes(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// Adds to `live` every object reachable from `node`, loading directory objects as needed.
pub(crate) fn mark_node(
    pool: &PoolInner,
    node: &Node,
    live: &mut HashSet<ObjectId>,
) -> Result<(), PoolError> {
    let mut todo: Vec<ObjectId> = Vec::new();
    match &node.content {
        Content::Tree(t) => todo.push(t.id),
        Content::File(chunks) => live.extend(chunks.iter().map(|c| c.id)),
        Content::None => {}
    }
    while let Some(id) = todo.pop() {
        if !live.insert(id) {
            continue;
        }
        let tree = pool.load_tree(&id)?;
        for n in &tree.nodes {
            match &n.content {
                Content::Tree(t) => {
                    if !live.contains(&t.id) {
                        todo.push(t.id);
                    }
                }
                Content::File(chunks) => live.extend(chunks.iter().map(|c| c.id)),
                Content::None => {}
            }
        }
    }
    Ok(())
}

/// Pack files present on disk.
pub(crate) fn packs_on_disk(pool: &PoolInner) -> Result<Vec<(PackId, u64)>, PoolError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(&pool.packs_dir)
        .map_err(|e| PoolError::io("listing packs", &pool.packs_dir, e))?;
    for sub in rd.flatten() {
        let Ok(files) = std::fs::read_dir(sub.path()) else {
            continue;
        };
        for f in files.flatten() {
            if let Some(id) = f.file_name().to_str().and_then(PackId::from_file_name) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((id, len));
            }
        }
    }
    Ok(out)
}

fn remove_pack_file(pool: &PoolInner, pack: PackId) {
    pool.forget_pack_file(pack);
    let path = pack.path(&pool.packs_dir);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot delete pack");
    }
}

pub(crate) fn run(pool: &PoolInner, opts: &GcOptions) -> Result<GcReport, PoolError> {
    let _one_gc = lock(&pool.gc_running);
    let began = Instant::now();
    let mut report = GcReport {
        bytes_before: packs_on_disk(pool)?.iter().map(|(_, l)| l).sum(),
        ..GcReport::default()
    };

    // Mark without blocking writers.
    let mut live = HashSet::new();
    let mut marked: HashSet<SnapshotId> = HashSet::new();
    for record in catalog::list(&pool.index, None)? {
        mark_node(pool, &record.root, &mut live)?;
        marked.insert(record.info.id);
    }

    // Sweep with writers paused at their next lookup.
    let (empty, repack) = {
        let _exclusive = pool.inflight.exclusive();
        for record in catalog::list(&pool.index, None)? {
            if !marked.contains(&record.info.id) {
                mark_node(pool, &record.root, &mut live)?;
                marked.insert(record.info.id);
            }
        }
        let mut protected: HashSet<PackId> = HashSet::new();
        for claims in pool.inflight.all() {
            protected.extend(lock(&claims.packs).iter().copied());
            live.extend(lock(&claims.objects).iter().copied());
            let roots: Vec<ObjectId> = lock(&claims.roots).clone();
            for root in roots {
                let node = Node {
                    entry: crate::entry::Entry::new(Vec::new(), crate::entry::EntryKind::Directory),
                    content: Content::Tree(crate::tree::TreeRef {
                        id: root,
                        files: 0,
                        bytes: 0,
                        entries: 0,
                    }),
                };
                mark_node(pool, &node, &mut live)?;
            }
        }
        report.snapshots = marked.len() as u64;

        let mut dead: Vec<ObjectId> = Vec::new();
        let mut live_bytes: HashMap<PackId, u64> = HashMap::new();
        pool.index.for_each_object(|id, loc| {
            if live.contains(&id) || protected.contains(&loc.pack) {
                *live_bytes.entry(loc.pack).or_default() += loc.record_len();
                report.live_objects += 1;
            } else {
                dead.push(id);
                report.swept_bytes += loc.record_len();
            }
            Ok(())
        })?;
        report.swept_objects = dead.len() as u64;
        drop(live);

        let indexed = pool.index.packs()?;
        let indexed_ids: HashSet<PackId> = indexed.iter().map(|(p, _, _)| *p).collect();
        let mut empty = Vec::new();
        let mut repack = Vec::new();
        let mut small = Vec::new();
        for (pack, len, _) in &indexed {
            if protected.contains(pack) {
                continue;
            }
            let bytes = live_bytes.get(pack).copied().unwrap_or(0);
            if bytes == 0 {
                empty.push(*pack);
            } else if (bytes as f64) < opts.repack_threshold * (*len as f64) {
                repack.push(*pack);
            } else if *len < pool.options.pack_target_size / 4 {
                small.push(*pack);
            }
        }
        // Many small packs (one per commit) are merged too.
        if small.len() >= 4 {
            repack.extend(small);
        }

        if !opts.dry_run {
            let op = "sweeping";
            let txn = pool
                .index
                .db()
                .begin_write()
                .map_err(|e| PoolError::index(op, e))?;
            {
                let mut objects = txn
                    .open_table(OBJECTS)
                    .map_err(|e| PoolError::index(op, e))?;
                for id in &dead {
                    objects.remove(&id.0).map_err(|e| PoolError::index(op, e))?;
                }
                let mut packs = txn.open_table(PACKS).map_err(|e| PoolError::index(op, e))?;
                for pack in &empty {
                    packs.remove(pack.0).map_err(|e| PoolError::index(op, e))?;
                }
            }
            txn.commit().map_err(|e| PoolError::index(op, e))?;
            pool.inflight.bump_generation();
            for (pack, _) in packs_on_disk(pool)? {
                if !indexed_ids.contains(&pack) && !protected.contains(&pack) {
                    remove_pack_file(pool, pack);
                    report.orphan_packs_deleted += 1;
                }
            }
        }
        (empty, repack)
    };

    if !opts.dry_run {
        for pack in &empty {
            remove_pack_file(pool, *pack);
        }
        report.packs_deleted = empty.len() as u64;
        report.packs_repacked = repack_packs(pool, &repack)?;
    }
    report.bytes_after = packs_on_disk(pool)?.iter().map(|(_, l)| l).sum();
    report.seconds = began.elapsed().as_secs_f64();
    tracing::info!(?report, "gc done");
    Ok(report)
}

/// Copies the live objects of `packs` into new packs, repoints the index, deletes the old
/// files. A pack with a corrupt object is left alone (fsck reports it).
fn repack_packs(pool: &PoolInner, packs: &[PackId]) -> Result<u64, PoolError> {
    if packs.is_empty() {
        return Ok(0);
    }
    let wanted: HashSet<PackId> = packs.iter().copied().collect();
    let mut by_pack: HashMap<PackId, Vec<(ObjectId, ObjectLocation)>> = HashMap::new();
    pool.index.for_each_object(|id, loc| {
        if wanted.contains(&loc.pack) {
            by_pack.entry(loc.pack).or_default().push((id, loc));
        }
        Ok(())
    })?;
    let claims = pool.inflight.register();
    let mut writer: Option<PackWriter> = None;
    let mut moved: Vec<(ObjectId, PackId)> = Vec::new();
    let mut retired: Vec<PackId> = Vec::new();
    let mut repacked = 0;
    let mut order: Vec<PackId> = packs.to_vec();
    order.sort();
    for pack in order {
        let mut objects = by_pack.remove(&pack).unwrap_or_default();
        objects.sort_by_key(|(_, l)| l.offset);
        let file = match pool.pack_file(pack) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(%pack, error = %e, "cannot open pack for repacking; left alone");
                continue;
            }
        };
        let mut copies = Vec::new();
        let mut sound = true;
        for (id, loc) in &objects {
            let record = match read_record(&file, id, loc)
                .and_then(|r| decode_record(&r, id, loc).map(|_| r))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%pack, error = %e, "corrupt object; pack not repacked");
                    sound = false;
                    break;
                }
            };
            copies.push((*id, *loc, record));
        }
        if !sound {
            continue;
        }
        for (id, loc, record) in copies {
            if writer.is_none() {
                let new = PackId::random();
                {
                    let _shared = pool.inflight.shared();
                    lock(&claims.claims().packs).insert(new);
                }
                writer = Some(PackWriter::create(
                    &pool.packs_dir,
                    new,
                    pool.options.write_faults.clone(),
                )?);
            }
            if let Some(w) = writer.as_mut() {
                w.append(
                    id,
                    loc.kind,
                    loc.compressed,
                    loc.plain_len,
                    &record[crate::pack::RECORD_HEADER..],
                )?;
            }
            moved.push((id, pack));
        }
        retired.push(pack);
        repacked += 1;
        if writer
            .as_ref()
            .is_some_and(|w| w.len() >= pool.options.pack_target_size)
        {
            publish_repack(pool, writer.take(), &mut moved, &mut retired)?;
        }
    }
    publish_repack(pool, writer.take(), &mut moved, &mut retired)?;
    drop(claims);
    Ok(repacked)
}

/// Makes a repacked pack durable, then in one transaction records it, repoints the moved
/// objects (if still in their old pack) and forgets the retired packs; then deletes those.
fn publish_repack(
    pool: &PoolInner,
    writer: Option<PackWriter>,
    moved: &mut Vec<(ObjectId, PackId)>,
    retired: &mut Vec<PackId>,
) -> Result<(), PoolError> {
    let finished = match writer {
        Some(w) => Some(w.finish()?),
        None => None,
    };
    if finished.is_none() && retired.is_empty() {
        return Ok(());
    }
    let op = "recording repack";
    let txn = pool
        .index
        .db()
        .begin_write()
        .map_err(|e| PoolError::index(op, e))?;
    {
        let mut objects = txn
            .open_table(OBJECTS)
            .map_err(|e| PoolError::index(op, e))?;
        let mut packs = txn.open_table(PACKS).map_err(|e| PoolError::index(op, e))?;
        if let Some(fin) = &finished {
            let new_locs: HashMap<ObjectId, ObjectLocation> = fin.objects.iter().copied().collect();
            for (id, old_pack) in moved.iter() {
                let current = objects
                    .get(&id.0)
                    .map_err(|e| PoolError::index(op, e))?
                    .and_then(|v| ObjectLocation::decode(v.value()));
                if current.map(|l| l.pack) == Some(*old_pack)
                    && let Some(loc) = new_locs.get(id)
                {
                    objects
                        .insert(&id.0, loc.encode().as_slice())
                        .map_err(|e| PoolError::index(op, e))?;
                }
            }
            packs
                .insert(fin.id.0, (fin.len, fin.objects.len() as u64))
                .map_err(|e| PoolError::index(op, e))?;
        }
        for pack in retired.iter() {
            packs.remove(pack.0).map_err(|e| PoolError::index(op, e))?;
        }
    }
    txn.commit().map_err(|e| PoolError::index(op, e))?;
    for pack in retired.drain(..) {
        remove_pack_file(pool, pack);
    }
    moved.clear();
    Ok(())
}
