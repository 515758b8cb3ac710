//! Two years of daily backups under several policies: after each backup, retention runs,
//! and every removal is checked against the rules as BackupPC's documentation states them
//! (written here independently of [`super::plan`]); the documented `[4, 2, 3]` example is
//! checked against its listing.

use std::time::Duration;

use super::{BackupSummary, Expiry, RetentionPolicy, Rule, plan};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

fn weekly(full_keep: Vec<u32>) -> RetentionPolicy {
    RetentionPolicy {
        full_keep,
        full_period: Duration::from_secs(602_208),
        ..RetentionPolicy::default()
    }
}

/// How the simulation makes backups.
struct Run {
    /// Every day an incremental, every seventh day a full; or only weekly fulls.
    daily_incrementals: bool,
    /// Days whose backup failed (nothing recorded).
    failed: fn(i64) -> bool,
    /// Backups an admin flags keep.
    keep: fn(u64) -> bool,
}

/// Checks one removal against the rules, on the backups as they were just before it.
fn check(removed: &Expiry, before: &[BackupSummary], policy: &RetentionPolicy, now: i64) {
    let b = before
        .iter()
        .find(|b| b.number == removed.number)
        .expect("removes an existing backup");
    let newest = before.iter().map(|b| b.started).max().expect("backups");
    assert!(!b.keep, "a kept backup was removed: {removed:?}");
    assert!(
        b.started < newest,
        "the newest backup was removed: {removed:?}"
    );
    let counted: Vec<&BackupSummary> = before.iter().filter(|x| !x.keep).collect();
    let is_full = |x: &BackupSummary| x.full || x.started == newest;
    let incrs: Vec<&&BackupSummary> = counted.iter().filter(|x| !is_full(x)).collect();
    let fulls: Vec<&&BackupSummary> = counted.iter().filter(|x| is_full(x)).collect();
    let age = (now - b.started) as f64;
    match removed.rule {
        Rule::IncrKeep | Rule::IncrAgeMax => {
            assert!(!b.full, "{removed:?} is a full");
            let oldest = incrs.iter().map(|x| x.started).min();
            assert_eq!(oldest, Some(b.started), "not the oldest incremental");
            if removed.rule == Rule::IncrKeep {
                assert!(incrs.len() > policy.incr_keep as usize);
            } else {
                assert!(incrs.len() > policy.incr_keep_min as usize);
                assert!(age > policy.incr_age_max.as_secs_f64());
            }
        }
        Rule::FullAgeMax => {
            assert!(b.full);
            assert_eq!(fulls.iter().map(|x| x.started).min(), Some(b.started));
            assert!(fulls.len() > policy.full_keep_min as usize + 1);
            assert!(age > policy.full_age_max.as_secs_f64());
        }
        Rule::FullKeep | Rule::FullInterval => {
            assert!(b.full, "{removed:?} is not a full");
            // Everything the array asks for is still there after the removal: at least
            // `sum(full_keep) + 1` fulls remain whenever as many existed.
            let wanted: u32 = policy.full_keep.iter().sum::<u32>() + 1;
            assert!(
                fulls.len() > wanted as usize || removed.rule == Rule::FullInterval,
                "{removed:?}: only {} fulls, {wanted} wanted",
                fulls.len()
            );
            if removed.rule == Rule::FullInterval {
                // Between two kept fulls that are less than the level's interval apart,
                // never one of the newest `full_keep[0] + 1`.
                let newer = fulls.iter().filter(|x| x.started > b.started).count();
                assert!(
                    newer as u32 > policy.full_keep[0],
                    "{removed:?}: {newer} newer"
                );
            }
        }
    }
}

/// Simulates `days` of backups under `policy`; returns the backups left at the end.
fn simulate(policy: &RetentionPolicy, run: &Run, days: i64) -> Vec<BackupSummary> {
    let mut backups: Vec<BackupSummary> = Vec::new();
    let mut number = 0;
    for day in 0..days {
        let full = day % 7 == 0;
        if !run.daily_incrementals && !full || (run.failed)(day) {
            continue;
        }
        let started = day * DAY + 3600;
        backups.push(BackupSummary {
            number,
            started,
            full,
            keep: (run.keep)(number),
        });
        number += 1;
        let now = started + 2 * 3600;
        for removed in plan(&backups, policy, now) {
            check(&removed, &backups, policy, now);
            backups.retain(|b| b.number != removed.number);
        }
        // Never more incrementals than asked, beyond the newest.
        let newest = backups.iter().map(|b| b.started).max().unwrap_or(0);
        let incrs = backups
            .iter()
            .filter(|b| !b.full && !b.keep && b.started != newest)
            .count();
        assert!(
            incrs <= policy.incr_keep as usize,
            "day {day}: {incrs} incrementals"
        );
    }
    backups
}

fn full_ages_in_weeks(backups: &[BackupSummary], now: i64) -> Vec<i64> {
    let mut ages: Vec<i64> = backups
        .iter()
        .filter(|b| b.full)
        .map(|b| (now - b.started + DAY) / WEEK)
        .collect();
    ages.sort();
    ages
}

#[test]
fn default_policy_keeps_one_full_besides_the_newest_and_six_incrementals() {
    let run = Run {
        daily_incrementals: true,
        failed: |_| false,
        keep: |_| false,
    };
    let policy = RetentionPolicy::default();
    let left = simulate(&policy, &run, 730);
    let fulls = left.iter().filter(|b| b.full).count();
    let incrs = left.iter().filter(|b| !b.full).count();
    // Day 729 is an incremental: one full (day 728) plus, as the newest is filled, the full
    // before it (the newest counts as the first of full_keep + 1).
    assert!((1..=2).contains(&fulls), "{fulls} fulls: {left:?}");
    assert!(incrs <= 7, "{incrs} incrementals");
}

#[test]
fn documented_exponential_example() {
    // `full_keep = [4, 2, 3]` with weekly fulls keeps fulls about 0, 1, 2, 3, 5, 7, 11, 15
    // and 19 weeks old ("deleting every other full as each expiry boundary is crossed").
    // BackupPC 4's code keeps one more at the first interval than that listing (written for
    // BackupPC 3) shows, for the newest backup ("always save one more than what the user
    // configured"), so the 4-week-old full stays too: hoard makes the same decisions.
    let run = Run {
        daily_incrementals: false,
        failed: |_| false,
        keep: |_| false,
    };
    let policy = weekly(vec![4, 2, 3]);
    let mut seen = Vec::new();
    for weeks in 30..60 {
        let days = weeks * 7 + 1;
        let left = simulate(&policy, &run, days);
        let now = (days - 1) * DAY + 3 * 3600;
        let ages = full_ages_in_weeks(&left, now);
        // The newest and four more a week apart, then two at about two weeks, then three
        // at about four weeks; the oldest is 17 to 20 weeks old.
        assert_eq!(&ages[..5], &[0, 1, 2, 3, 4], "week {weeks}: {ages:?}");
        assert_eq!(ages.len(), 10, "week {weeks}: {ages:?}");
        let oldest = *ages.last().expect("fulls");
        assert!((17..=20).contains(&oldest), "week {weeks}: {ages:?}");
        for pair in ages.windows(2) {
            assert!(pair[1] - pair[0] <= 4, "week {weeks}: {ages:?}");
        }
        seen.push(ages);
    }
    assert!(
        seen.contains(&vec![0, 1, 2, 3, 4, 5, 7, 11, 15, 19]),
        "the documented listing never appears: {seen:?}"
    );
}

#[test]
fn ages_and_minimums_and_failures_and_keep_flags() {
    let policies = [
        RetentionPolicy {
            full_keep: vec![2],
            full_keep_min: 1,
            full_age_max: Duration::from_secs(20 * DAY as u64),
            incr_keep: 30,
            incr_keep_min: 2,
            incr_age_max: Duration::from_secs(5 * DAY as u64),
            ..weekly(vec![2])
        },
        weekly(vec![4, 0, 4, 0, 0, 2]),
        RetentionPolicy {
            incr_keep: 3,
            ..weekly(vec![1, 1, 1, 1])
        },
    ];
    let run = Run {
        daily_incrementals: true,
        failed: |day| day % 11 == 3 || day % 29 == 0,
        keep: |number| number == 40 || number == 333,
    };
    for policy in &policies {
        let left = simulate(policy, &run, 730);
        assert!(
            left.iter().any(|b| b.number == 40),
            "kept backup 40 is gone"
        );
        assert!(
            left.iter().any(|b| b.number == 333),
            "kept backup 333 is gone"
        );
    }
    // With an incremental age limit of 5 days, no unkept incremental is older.
    let left = simulate(&policies[0], &run, 730);
    let last = left.iter().map(|b| b.started).max().unwrap_or(0) + 2 * 3600;
    for b in left.iter().filter(|b| !b.full && !b.keep) {
        assert!(last - b.started <= 6 * DAY, "{b:?}");
    }
}

#[test]
fn an_empty_full_keep_expires_nothing() {
    let backups: Vec<BackupSummary> = (0..20)
        .map(|n| BackupSummary {
            number: n,
            started: n as i64 * DAY,
            full: n % 7 == 0,
            keep: false,
        })
        .collect();
    let policy = RetentionPolicy {
        full_keep: Vec::new(),
        ..RetentionPolicy::default()
    };
    assert!(plan(&backups, &policy, 30 * DAY).is_empty());
}
