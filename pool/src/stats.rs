//! Pool statistics: logical size (what the snapshots hold), unique and stored size (what the
//! pool keeps), dedup and compression ratios, object and pack counts, per host and in total.

use std::collections::{BTreeMap, HashSet};

use crate::error::PoolError;
use crate::gc::{mark_node, packs_on_disk};
use crate::index::Index;
use crate::object::{ObjectId, ObjectKind};
use crate::pool::PoolInner;
use crate::snapshot::catalog;

/// Sizes of a set of snapshots (one host's, or all).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageStats {
    /// Snapshots counted.
    pub snapshots: u64,
    /// Regular files, summed over snapshots.
    pub files: u64,
    /// Bytes of regular files, summed over snapshots (what a restore of each would write).
    pub logical_bytes: u64,
    /// Plain bytes of the distinct file-content objects referenced.
    pub unique_bytes: u64,
    /// Bytes those objects and the directory objects take in packs (compressed).
    pub stored_bytes: u64,
    /// Distinct objects referenced (content and directories).
    pub objects: u64,
    /// `logical_bytes / unique_bytes` (how much dedup saves).
    pub dedup_ratio: f64,
    /// Plain bytes of all referenced objects over their stored bytes.
    pub compression_ratio: f64,
}

/// Statistics of the whole pool.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolStats {
    /// All snapshots of all hosts (shared objects counted once).
    pub total: UsageStats,
    /// Per host (objects shared between hosts count in each).
    pub hosts: BTreeMap<String, UsageStats>,
    /// Objects in the index, referenced or not.
    pub index_objects: u64,
    /// Pack files on disk.
    pub packs: u64,
    /// Bytes of pack files on disk.
    pub pack_bytes: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn usage(
    index: &Index,
    ids: &HashSet<ObjectId>,
    snapshots: u64,
    files: u64,
    logical: u64,
) -> Result<UsageStats, PoolError> {
    let table = index.objects()?;
    let (mut unique, mut plain, mut stored) = (0u64, 0u64, 0u64);
    for id in ids {
        if let Some(loc) = Index::lookup_in(&table, id)? {
            plain += loc.plain_len as u64;
            stored += loc.record_len();
            if loc.kind == ObjectKind::Data {
                unique += loc.plain_len as u64;
            }
        }
    }
    Ok(UsageStats {
        snapshots,
        files,
        logical_bytes: logical,
        unique_bytes: unique,
        stored_bytes: stored,
        objects: ids.len() as u64,
        dedup_ratio: ratio(logical, unique),
        compression_ratio: ratio(plain, stored),
    })
}

pub(crate) fn run(pool: &PoolInner) -> Result<PoolStats, PoolError> {
    let records = catalog::list(&pool.index, None)?;
    let mut stats = PoolStats::default();
    let mut all = HashSet::new();
    let (mut n, mut files, mut logical) = (0, 0, 0);
    let mut i = 0;
    while i < records.len() {
        let host = records[i].info.id.host.clone();
        let mut ids = HashSet::new();
        let (mut hn, mut hfiles, mut hlogical) = (0, 0, 0);
        while i < records.len() && records[i].info.id.host == host {
            let r = &records[i];
            mark_node(pool, &r.root, &mut ids)?;
            hn += 1;
            hfiles += r.info.file_count;
            hlogical += r.info.bytes;
            i += 1;
        }
        stats
            .hosts
            .insert(host, usage(&pool.index, &ids, hn, hfiles, hlogical)?);
        n += hn;
        files += hfiles;
        logical += hlogical;
        all.extend(ids);
    }
    stats.total = usage(&pool.index, &all, n, files, logical)?;
    let mut count = 0;
    pool.index.for_each_object(|_, _| {
        count += 1;
        Ok(())
    })?;
    stats.index_objects = count;
    let packs = packs_on_disk(pool)?;
    stats.packs = packs.len() as u64;
    stats.pack_bytes = packs.iter().map(|(_, l)| l).sum();
    Ok(stats)
}
