//! Applying retention to a host's backups in the pool: read the snapshots, plan, delete (or,
//! on a dry run, only report). The objects the deleted backups alone used are reclaimed by
//! the pool's GC afterwards (`hoard gc`, or the nightly maintenance).

use hoard_pool::{Pool, PoolError, SnapshotId, Timestamp};
use serde::Serialize;

use super::{BackupSummary, RetentionPolicy, Rule, plan};

/// Why retention could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The pool failed.
    #[error("pool: {0}")]
    Pool(#[from] PoolError),
}

/// One backup removed (or that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// Its number.
    pub number: u64,
    /// `full` or `incremental`.
    pub kind: &'static str,
    /// When it started, seconds since the epoch.
    pub started: i64,
    /// The rule that removed it.
    pub rule: Rule,
    /// The rule, in words.
    pub reason: &'static str,
}

/// What retention did to one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireReport {
    /// The host.
    pub host: String,
    /// Backups before.
    pub before: usize,
    /// The backups removed, in order.
    pub expired: Vec<Expired>,
    /// Whether this was only a plan.
    pub dry_run: bool,
}

/// Applies `policy` to `host`'s backups at `now`; with `dry_run`, changes nothing.
pub fn expire_host(
    pool: &Pool,
    host: &str,
    policy: &RetentionPolicy,
    now: Timestamp,
    dry_run: bool,
) -> Result<ExpireReport, RetentionError> {
    let snapshots = pool.snapshots(host)?;
    let summaries: Vec<BackupSummary> = snapshots
        .iter()
        .map(|s| BackupSummary {
            number: s.id.number,
            started: s.started.seconds,
            full: s.backup_type == hoard_pool::BackupType::Full && !s.partial,
            keep: s.keep,
        })
        .collect();
    let mut expired = Vec::new();
    for expiry in plan(&summaries, policy, now.seconds) {
        let Some(info) = snapshots.iter().find(|s| s.id.number == expiry.number) else {
            continue;
        };
        if !dry_run {
            pool.delete_snapshot(&SnapshotId {
                host: host.to_string(),
                number: expiry.number,
            })?;
            tracing::info!(
                host,
                number = expiry.number,
                reason = expiry.rule.describe(),
                "backup expired"
            );
        }
        expired.push(Expired {
            number: expiry.number,
            kind: match info.backup_type {
                hoard_pool::BackupType::Full => "full",
                hoard_pool::BackupType::Incremental => "incremental",
            },
            started: info.started.seconds,
            rule: expiry.rule,
            reason: expiry.rule.describe(),
        });
    }
    Ok(ExpireReport {
        host: host.to_string(),
        before: snapshots.len(),
        expired,
        dry_run,
    })
}
