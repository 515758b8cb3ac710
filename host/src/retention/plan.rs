//! The retention decision: given a host's backups, its policy and the time, which backups
//! expire and by which rule. The rules are BackupPC 4's (`BackupExpire` and
//! `BackupFullExpire` in `BackupPC_dump`), applied the same way: one step at a time, each
//! step looking at what the previous ones left, until no rule removes anything.
//!
//! 1. Incrementals: the oldest goes while more than `incr_keep` remain, or more than
//!    `incr_keep_min` remain and the oldest is older than `incr_age_max`.
//! 2. Fulls by age: the oldest goes while more than `full_keep_min + 1` remain, it is older
//!    than `full_age_max`, and older than everything `full_keep` asks to keep (so a long
//!    `full_keep` raises `full_age_max`).
//! 3. Fulls by the exponential array: walking from the newest full back, the first
//!    `full_keep[0] + 1` are kept at one full period apart; once the kept ones reach back past
//!    that span, the interval doubles for the next `full_keep[1]`, and so on. A full closer to
//!    the one kept after it than the current interval goes, and so does every full beyond
//!    the last entry.
//!
//! Backups with the keep flag take no part (they are neither counted nor removed), and the
//! newest backup counts as a full whatever its type, so it is never removed.

use serde::Serialize;

use super::RetentionPolicy;

const DAY: f64 = 86_400.0;

/// What retention needs to know of one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Its number.
    pub number: u64,
    /// When it started, seconds since the epoch.
    pub started: i64,
    /// A complete full backup.
    pub full: bool,
    /// Kept by an admin, whatever the rules say.
    pub keep: bool,
}

/// Which rule removed a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// More incrementals than `incr_keep`.
    IncrKeep,
    /// An incremental older than `incr_age_max`, beyond `incr_keep_min`.
    IncrAgeMax,
    /// A full older than `full_age_max`, beyond `full_keep_min`.
    FullAgeMax,
    /// A full between two kept at the current exponential interval.
    FullInterval,
    /// A full beyond the last entry of `full_keep`.
    FullKeep,
}

impl Rule {
    /// A phrase for the user.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::IncrKeep => "more incrementals than incr_keep",
            Rule::IncrAgeMax => "incremental older than incr_age_max",
            Rule::FullAgeMax => "full older than full_age_max",
            Rule::FullInterval => "full closer to the next kept one than its full_keep interval",
            Rule::FullKeep => "full beyond what full_keep keeps",
        }
    }
}

/// One backup that expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// Its number.
    pub number: u64,
    /// Why.
    pub rule: Rule,
}

/// The backups of one host that expire at `now`, in the order the rules remove them.
/// `backups` may come in any order.
pub fn plan(backups: &[BackupSummary], policy: &RetentionPolicy, now: i64) -> Vec<Expiry> {
    let mut left: Vec<BackupSummary> = backups.to_vec();
    left.sort_by_key(|b| (b.started, b.number));
    let newest = left.last().map(|b| b.number);
    let mut expired = Vec::new();
    if policy.full_keep.is_empty() {
        // Like BackupPC with an empty FullKeepCnt: a broken policy expires nothing.
        return expired;
    }
    let age_days = |b: &BackupSummary| (now - b.started) as f64 / DAY;
    loop {
        let candidates: Vec<&BackupSummary> = left.iter().filter(|b| !b.keep).collect();
        let filled = |b: &BackupSummary| b.full || Some(b.number) == newest;
        let fulls: Vec<&BackupSummary> = candidates.iter().copied().filter(|b| filled(b)).collect();
        let incrs: Vec<&BackupSummary> =
            candidates.iter().copied().filter(|b| !filled(b)).collect();

        if let Some(oldest) = incrs.first() {
            let count = incrs.len() as u64;
            let rule = if count > u64::from(policy.incr_keep) {
                Some(Rule::IncrKeep)
            } else if count > u64::from(policy.incr_keep_min)
                && age_days(oldest) > policy.incr_age_max.as_secs_f64() / DAY
            {
                Some(Rule::IncrAgeMax)
            } else {
                None
            };
            if let Some(rule) = rule {
                let number = oldest.number;
                remove(&mut left, &mut expired, number, rule);
                continue;
            }
        }

        let keep: Vec<u32> = kept_counts(&policy.full_keep);
        if let Some(oldest) = fulls.first() {
            let mut period = (policy.full_period.as_secs_f64() / DAY + 0.5).floor();
            if period <= 0.0 {
                period = 7.0;
            }
            let mut span = 0.0;
            for count in &keep {
                span += f64::from(*count) * period;
                period *= 2.0;
            }
            span += period;
            let age = age_days(oldest);
            let age_max = policy.full_age_max.as_secs_f64() / DAY;
            if fulls.len() as u64 > u64::from(policy.full_keep_min) + 1
                && age > age_max
                && age > span
                && age_max > 0.0
            {
                let number = oldest.number;
                remove(&mut left, &mut expired, number, Rule::FullAgeMax);
                continue;
            }
        }

        let by_interval = exponential(&fulls, &keep, policy, now);
        if by_interval.is_empty() {
            break;
        }
        for (number, rule) in by_interval {
            remove(&mut left, &mut expired, number, rule);
        }
    }
    expired
}

/// `full_keep` with one more at the first interval, for the newest backup.
fn kept_counts(full_keep: &[u32]) -> Vec<u32> {
    let mut keep = full_keep.to_vec();
    if let Some(first) = keep.first_mut() {
        *first += 1;
    }
    keep
}

/// Rule 3 over `fulls` (oldest first): the fulls to remove.
fn exponential(
    fulls: &[&BackupSummary],
    keep: &[u32],
    policy: &RetentionPolicy,
    now: i64,
) -> Vec<(u64, Rule)> {
    let mut period = policy.full_period.as_secs_f64() / DAY;
    if period <= 0.0 {
        period = 1.0;
    }
    let slack = if period < 1.0 { period / 2.0 } else { 0.5 };
    let first_span = (period * (f64::from(keep[0]) - 1.0) - slack) * DAY;
    let mut level = 0usize;
    let mut kept_at_level = 0u32;
    let mut last_kept: Option<&BackupSummary> = None;
    let mut remove = Vec::new();
    for k in (0..fulls.len()).rev() {
        let this = fulls[k];
        let previous = k.checked_sub(1).map(|p| fulls[p]);
        let too_close = match (previous, last_kept) {
            (Some(previous), Some(kept)) if level > 0 => {
                ((kept.started - previous.started) as f64) < (period + slack) * DAY
            }
            _ => false,
        };
        if level >= keep.len() {
            remove.push((this.number, Rule::FullKeep));
        } else if too_close {
            remove.push((this.number, Rule::FullInterval));
        } else {
            kept_at_level += 1;
            last_kept = Some(this);
            if let Some(previous) = previous {
                while level < keep.len()
                    && (now - previous.started) as f64 > first_span
                    && kept_at_level >= keep[level]
                {
                    level += 1;
                    kept_at_level = 0;
                    period *= 2.0;
                }
            }
        }
    }
    remove.reverse();
    remove
}

fn remove(left: &mut Vec<BackupSummary>, expired: &mut Vec<Expiry>, number: u64, rule: Rule) {
    left.retain(|b| b.number != number);
    expired.push(Expiry { number, rule });
}
