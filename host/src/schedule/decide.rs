//! At a wakeup, what one host needs and why: BackupPC's rules. A full runs when the last
//! full is older than the full period (or there is none), otherwise an incremental when the
//! last backup is older than the incremental period. Failed and partial backups do not
//! count as done, so the next wakeup tries again (a partial one serves as the reference).

use serde::{Deserialize, Serialize};

use super::calendar::UnixTime;
use super::{LocalTime, SchedulePolicy};
use crate::config::BackupMode;
use hoard_pool::BackupType;

/// What the scheduler knows of one host's past.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostHistory {
    /// Start of the newest complete full backup.
    pub last_full: Option<UnixTime>,
    /// Start of the newest complete backup of either type.
    pub last_backup: Option<UnixTime>,
    /// Times in a row the host was seen up (`aliveCnt`).
    pub good_count: u32,
    /// Times in a row the host was seen down (`deadCnt`).
    pub bad_count: u32,
    /// No scheduled backups before this moment (`hoard stop HOST --backoff`).
    pub backoff_until: Option<UnixTime>,
}

impl HostHistory {
    /// Records a reachability check: an up host counts towards blackouts applying; enough
    /// downs in a row start that count again.
    pub fn observe(&mut self, reachable: bool, policy: &SchedulePolicy) {
        if reachable {
            self.good_count = self.good_count.saturating_add(1);
            self.bad_count = 0;
        } else {
            self.bad_count = self.bad_count.saturating_add(1);
            if self.bad_count >= policy.blackout_bad_count {
                self.good_count = 0;
            }
        }
    }

    /// Records a finished backup: only a complete one moves the clocks.
    pub fn completed(&mut self, kind: BackupType, started: UnixTime) {
        self.last_backup = Some(self.last_backup.map_or(started, |t| t.max(started)));
        if kind == BackupType::Full {
            self.last_full = Some(self.last_full.map_or(started, |t| t.max(started)));
        }
    }
}

/// What was seen at this wakeup, outside the host's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The host answered the reachability check in time.
    pub reachable: bool,
    /// The pool's file system is fuller than the limit.
    pub disk_full: bool,
}

/// Why a host that needs a backup does not get one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skip {
    /// Backups of this host are manual only or off.
    Disabled,
    /// An admin stopped scheduled backups for a while.
    BackedOff,
    /// The pool's file system is above the usage limit.
    DiskFull,
    /// The host did not answer the reachability check.
    Unreachable,
    /// Inside a blackout period of a host that is usually up.
    Blackout,
}

impl Skip {
    /// A short phrase for logs and status.
    pub fn describe(self) -> &'static str {
        match self {
            Skip::Disabled => "scheduled backups disabled",
            Skip::BackedOff => "backed off by an admin",
            Skip::DiskFull => "pool disk above the usage limit",
            Skip::Unreachable => "host unreachable",
            Skip::Blackout => "inside a blackout period",
        }
    }
}

/// The scheduler's answer for one host at one wakeup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run a backup of this type.
    Run(BackupType),
    /// Nothing is due.
    UpToDate,
    /// A backup is due but may not run now.
    Skipped(BackupType, Skip),
}

/// What backup, if any, is due at `now` by the periods alone.
pub fn due(policy: &SchedulePolicy, history: &HostHistory, now: UnixTime) -> Option<BackupType> {
    let older_than = |t: Option<UnixTime>, period: std::time::Duration| match t {
        None => true,
        Some(t) => now.saturating_sub(t) as f64 >= period.as_secs_f64(),
    };
    if older_than(history.last_full, policy.full_period) {
        Some(BackupType::Full)
    } else if older_than(history.last_backup, policy.incr_period) {
        Some(BackupType::Incremental)
    } else {
        None
    }
}

/// The decision for a scheduled wakeup. Call after [`HostHistory::observe`] with the same
/// reachability.
pub fn decide(
    policy: &SchedulePolicy,
    history: &HostHistory,
    now: UnixTime,
    local: LocalTime,
    seen: Observation,
) -> Decision {
    let Some(kind) = due(policy, history, now) else {
        return Decision::UpToDate;
    };
    let skip = if policy.backups != BackupMode::Scheduled {
        Some(Skip::Disabled)
    } else if history.backoff_until.is_some_and(|until| now < until) {
        Some(Skip::BackedOff)
    } else if seen.disk_full {
        Some(Skip::DiskFull)
    } else if !seen.reachable {
        Some(Skip::Unreachable)
    } else if history.good_count >= policy.blackout_good_count
        && policy.blackout_periods.iter().any(|p| p.covers(local))
    {
        Some(Skip::Blackout)
    } else {
        None
    };
    match skip {
        Some(why) => Decision::Skipped(kind, why),
        None => Decision::Run(kind),
    }
}

/// The type of a backup a user asked for: theirs if they chose, else what is due (an
/// incremental when nothing is). `None` when the host's backups are off. Blackouts,
/// backoffs and periods do not apply to a user's request.
pub fn requested(
    policy: &SchedulePolicy,
    history: &HostHistory,
    now: UnixTime,
    chosen: Option<BackupType>,
) -> Option<BackupType> {
    if policy.backups == BackupMode::Off {
        return None;
    }
    Some(chosen.unwrap_or_else(|| due(policy, history, now).unwrap_or(BackupType::Incremental)))
}
