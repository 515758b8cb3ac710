//! The scheduling settings, with BackupPC's defaults: per host ([`SchedulePolicy`]) and
//! server-wide ([`ServerLimits`]).

use std::time::Duration;

use crate::config::{BackupMode, Config, ResolvedHost, builtin};

use super::BlackoutPeriod;

/// How one host is scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulePolicy {
    /// Scheduled, on request only, or never (`BackupsDisable`).
    pub backups: BackupMode,
    /// A full runs when the last full is older than this (`FullPeriod`, 6.97 days).
    pub full_period: Duration,
    /// Otherwise an incremental runs when the last backup is older than this (`IncrPeriod`,
    /// 0.97 days).
    pub incr_period: Duration,
    /// Periods without scheduled backups for a host that is usually up (`BlackoutPeriods`).
    pub blackout_periods: Vec<BlackoutPeriod>,
    /// Times in a row a host must be seen up before blackouts apply (`BlackoutGoodCnt`, 7).
    pub blackout_good_count: u32,
    /// Times in a row a host must be seen down before that count starts again
    /// (`BlackoutBadCnt`, 3).
    pub blackout_bad_count: u32,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            backups: BackupMode::Scheduled,
            full_period: builtin::FULL_PERIOD,
            incr_period: builtin::INCR_PERIOD,
            blackout_periods: vec![BlackoutPeriod::office_hours()],
            blackout_good_count: builtin::BLACKOUT_GOOD_COUNT,
            blackout_bad_count: builtin::BLACKOUT_BAD_COUNT,
        }
    }
}

impl SchedulePolicy {
    /// The policy of a host as its config resolves.
    pub fn of(host: &ResolvedHost) -> SchedulePolicy {
        SchedulePolicy {
            backups: host.backups,
            full_period: host.full_period,
            incr_period: host.incr_period,
            blackout_periods: host.blackout_periods.clone(),
            blackout_good_count: host.blackout_good_count,
            blackout_bad_count: host.blackout_bad_count,
        }
    }
}

/// Limits that hold across hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Hours of the day the scheduler wakes up (`WakeupSchedule`); the first one listed
    /// also runs the nightly maintenance.
    pub wakeup_hours: Vec<f64>,
    /// Scheduled backups running at once (`MaxBackups`, 4).
    pub max_backups: usize,
    /// Backups a user asked for running at once (`MaxUserBackups`, 4).
    pub max_user_backups: usize,
    /// Scheduled backups are refused while the pool's file system is fuller than this, in
    /// percent (`DfMaxUsagePct`, 95).
    pub df_max_usage_pct: f64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            wakeup_hours: (1..=23).map(f64::from).collect(),
            max_backups: builtin::MAX_BACKUPS,
            max_user_backups: builtin::MAX_USER_BACKUPS,
            df_max_usage_pct: builtin::DF_MAX_USAGE_PCT,
        }
    }
}

impl ServerLimits {
    /// The limits the config sets.
    pub fn of(config: &Config) -> ServerLimits {
        let server = config.server_settings();
        let defaults = ServerLimits::default();
        ServerLimits {
            wakeup_hours: server
                .wakeup_schedule
                .clone()
                .unwrap_or(defaults.wakeup_hours),
            max_backups: server.max_backups.unwrap_or(defaults.max_backups),
            max_user_backups: server.max_user_backups.unwrap_or(defaults.max_user_backups),
            df_max_usage_pct: server.df_max_usage_pct.unwrap_or(defaults.df_max_usage_pct),
        }
    }
}
