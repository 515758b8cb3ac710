//! The snapshot catalog: committed snapshots keyed by (host, number) in the index database.
//! A commit is one transaction, so a snapshot either exists whole or not at all.

use redb::{ReadableDatabase, ReadableTable};

use super::{SnapshotId, SnapshotInfo, SnapshotRecord};
use crate::error::PoolError;
use crate::index::{Index, NEXT_NUMBER, SNAPSHOTS};

/// Refuses host names that are empty, too long, or contain `/`, NUL or control characters.
pub(crate) fn check_host(host: &str) -> Result<(), PoolError> {
    let bad = |detail| {
        Err(PoolError::InvalidHost {
            host: host.to_string(),
            detail,
        })
    };
    if host.is_empty() {
        return bad("empty");
    }
    if host.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if host.chars().any(|c| c.is_control() || c == '/') {
        return bad("contains '/' or a control character");
    }
    Ok(())
}

fn decode(id: SnapshotId, bytes: &[u8]) -> Result<SnapshotRecord, PoolError> {
    serde_json::from_slice(bytes).map_err(|e| PoolError::CorruptCatalog {
        id,
        detail: e.to_string(),
    })
}

/// The record of one snapshot.
pub(crate) fn load(index: &Index, id: &SnapshotId) -> Result<SnapshotRecord, PoolError> {
    let op = "reading catalog";
    let txn = index
        .db()
        .begin_read()
        .map_err(|e| PoolError::index(op, e))?;
    let table = txn
        .open_table(SNAPSHOTS)
        .map_err(|e| PoolError::index(op, e))?;
    let value = table
        .get((id.host.as_str(), id.number))
        .map_err(|e| PoolError::index(op, e))?
        .ok_or_else(|| PoolError::SnapshotNotFound { id: id.clone() })?;
    decode(id.clone(), value.value())
}

/// Records of one host's snapshots (or of all hosts), sorted by host then number.
pub(crate) fn list(index: &Index, host: Option<&str>) -> Result<Vec<SnapshotRecord>, PoolError> {
    let op = "listing catalog";
    let txn = index
        .db()
        .begin_read()
        .map_err(|e| PoolError::index(op, e))?;
    let table = txn
        .open_table(SNAPSHOTS)
        .map_err(|e| PoolError::index(op, e))?;
    let range = match host {
        Some(h) => table.range((h, 0u64)..=(h, u64::MAX)),
        None => table.range::<(&str, u64)>(..),
    }
    .map_err(|e| PoolError::index(op, e))?;
    let mut out = Vec::new();
    for row in range {
        let (k, v) = row.map_err(|e| PoolError::index(op, e))?;
        let (h, n) = k.value();
        out.push(decode(SnapshotId::new(h, n), v.value())?);
    }
    Ok(out)
}

/// Hosts with snapshots.
pub(crate) fn hosts(index: &Index) -> Result<Vec<String>, PoolError> {
    let op = "listing hosts";
    let txn = index
        .db()
        .begin_read()
        .map_err(|e| PoolError::index(op, e))?;
    let table = txn
        .open_table(SNAPSHOTS)
        .map_err(|e| PoolError::index(op, e))?;
    let mut out: Vec<String> = Vec::new();
    for row in table
        .range::<(&str, u64)>(..)
        .map_err(|e| PoolError::index(op, e))?
    {
        let (k, _) = row.map_err(|e| PoolError::index(op, e))?;
        let (h, _) = k.value();
        if out.last().map(String::as_str) != Some(h) {
            out.push(h.to_string());
        }
    }
    Ok(out)
}

/// Commits a snapshot of `host`: assigns the next number, stores the record, durably.
pub(crate) fn commit(
    index: &Index,
    host: &str,
    make: impl FnOnce(u64) -> SnapshotRecord,
) -> Result<SnapshotRecord, PoolError> {
    let op = "committing snapshot";
    let txn = index
        .db()
        .begin_write()
        .map_err(|e| PoolError::index(op, e))?;
    let record;
    {
        let mut counters = txn
            .open_table(NEXT_NUMBER)
            .map_err(|e| PoolError::index(op, e))?;
        let mut snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| PoolError::index(op, e))?;
        let counted = counters
            .get(host)
            .map_err(|e| PoolError::index(op, e))?
            .map(|v| v.value())
            .unwrap_or(0);
        let last = snapshots
            .range((host, 0u64)..=(host, u64::MAX))
            .map_err(|e| PoolError::index(op, e))?
            .next_back()
            .transpose()
            .map_err(|e| PoolError::index(op, e))?
            .map(|(k, _)| k.value().1 + 1)
            .unwrap_or(0);
        let number = counted.max(last);
        record = make(number);
        let json = serde_json::to_vec(&record).map_err(|e| PoolError::index(op, e))?;
        snapshots
            .insert((host, number), json.as_slice())
            .map_err(|e| PoolError::index(op, e))?;
        counters
            .insert(host, number + 1)
            .map_err(|e| PoolError::index(op, e))?;
    }
    txn.commit().map_err(|e| PoolError::index(op, e))?;
    Ok(record)
}

/// Removes a snapshot.
pub(crate) fn delete(index: &Index, id: &SnapshotId) -> Result<(), PoolError> {
    let op = "deleting snapshot";
    let txn = index
        .db()
        .begin_write()
        .map_err(|e| PoolError::index(op, e))?;
    let existed = {
        let mut snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| PoolError::index(op, e))?;
        snapshots
            .remove((id.host.as_str(), id.number))
            .map_err(|e| PoolError::index(op, e))?
            .is_some()
    };
    if !existed {
        return Err(PoolError::SnapshotNotFound { id: id.clone() });
    }
    txn.commit().map_err(|e| PoolError::index(op, e))?;
    tracing::info!(snapshot = %id, "snapshot deleted");
    Ok(())
}

/// Changes a snapshot's info in place.
pub(crate) fn update(
    index: &Index,
    id: &SnapshotId,
    change: impl FnOnce(&mut SnapshotInfo),
) -> Result<(), PoolError> {
    let op = "updating snapshot";
    let txn = index
        .db()
        .begin_write()
        .map_err(|e| PoolError::index(op, e))?;
    {
        let mut snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| PoolError::index(op, e))?;
        let key = (id.host.as_str(), id.number);
        let mut record = {
            let value = snapshots
                .get(key)
                .map_err(|e| PoolError::index(op, e))?
                .ok_or_else(|| PoolError::SnapshotNotFound { id: id.clone() })?;
            decode(id.clone(), value.value())?
        };
        change(&mut record.info);
        let json = serde_json::to_vec(&record).map_err(|e| PoolError::index(op, e))?;
        snapshots
            .insert(key, json.as_slice())
            .map_err(|e| PoolError::index(op, e))?;
    }
    txn.commit().map_err(|e| PoolError::index(op, e))?;
    Ok(())
}
