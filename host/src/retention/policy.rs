//! The retention settings of one host, with BackupPC's defaults.

use std::time::Duration;

use crate::config::ResolvedHost;

const DAY: u64 = 86_400;

/// How many backups of a host are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Fulls kept: entry n is how many at an interval of 2^n full periods, not counting the
    /// newest backup (`FullKeepCnt`, default `[1]`).
    pub full_keep: Vec<u32>,
    /// Fulls kept however old (`FullKeepCntMin`, 1).
    pub full_keep_min: u32,
    /// Fulls older than this may go, beyond `full_keep_min` (`FullAgeMax`, 180 days).
    pub full_age_max: Duration,
    /// Incrementals kept (`IncrKeepCnt`, 6).
    pub incr_keep: u32,
    /// Incrementals kept however old (`IncrKeepCntMin`, 1).
    pub incr_keep_min: u32,
    /// Incrementals older than this may go, beyond `incr_keep_min` (`IncrAgeMax`, 30 days).
    pub incr_age_max: Duration,
    /// The full period, which sets the exponential intervals (`FullPeriod`).
    pub full_period: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            full_keep: vec![1],
            full_keep_min: 1,
            full_age_max: Duration::from_secs(180 * DAY),
            incr_keep: 6,
            incr_keep_min: 1,
            incr_age_max: Duration::from_secs(30 * DAY),
            full_period: crate::config::builtin::FULL_PERIOD,
        }
    }
}

impl RetentionPolicy {
    /// The policy of a host as its config resolves.
    pub fn of(host: &ResolvedHost) -> RetentionPolicy {
        host.retention.clone()
    }
}
