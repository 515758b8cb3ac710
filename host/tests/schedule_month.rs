//! A simulated clock drives a month of scheduler decisions for several hosts (an office
//! desktop under blackouts, a laptop that is up only in the evening, a host whose backups
//! fail, a host that is always down, a manual-only host, a machine up only in office
//! hours) under a concurrency limit, and
//! checks every decision against the rules stated here independently of the scheduler.

use std::collections::BTreeMap;

use hoard::config::BackupMode;
use hoard::schedule::{
    Decision, HostHistory, JobQueue, LocalTime, Observation, Origin, QueuedJob, SchedulePolicy,
    Skip, decide, next_wakeup, policy::ServerLimits,
};
use hoard_pool::BackupType;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// 2026-11-02 00:00 UTC, a Monday.
const START: i64 = 1_793_577_600;

struct SimHost {
    name: &'static str,
    policy: SchedulePolicy,
    history: HostHistory,
    /// Whether the host answers at a local time.
    up: fn(LocalTime) -> bool,
    /// Whether the n-th backup attempt of this host fails.
    fails: fn(u32) -> bool,
    attempts: u32,
    /// Independent record: start times of complete fulls and of all complete backups.
    fulls: Vec<i64>,
    backups: Vec<i64>,
    /// Consecutive ups and downs as the test counts them.
    ups_in_a_row: u32,
    downs_in_a_row: u32,
    decisions: Vec<(i64, Decision)>,
}

fn host(
    name: &'static str,
    backups: BackupMode,
    up: fn(LocalTime) -> bool,
    fails: fn(u32) -> bool,
) -> SimHost {
    SimHost {
        name,
        policy: SchedulePolicy {
            backups,
            ..SchedulePolicy::default()
        },
        history: HostHistory::default(),
        up,
        fails,
        attempts: 0,
        fulls: Vec::new(),
        backups: Vec::new(),
        ups_in_a_row: 0,
        downs_in_a_row: 0,
        decisions: Vec::new(),
    }
}

fn in_office_hours(at: LocalTime) -> bool {
    (1..=5).contains(&at.weekday) && at.hour >= 7.0 && at.hour <= 19.5
}

/// The rule, stated independently: what type is due, given the complete backups so far.
fn expected_due(h: &SimHost, now: i64) -> Option<BackupType> {
    let full_period = h.policy.full_period.as_secs_f64();
    let incr_period = h.policy.incr_period.as_secs_f64();
    let last_full = h.fulls.iter().max();
    let last_any = h.backups.iter().max();
    if last_full.is_none_or(|t| (now - t) as f64 >= full_period) {
        Some(BackupType::Full)
    } else if last_any.is_none_or(|t| (now - t) as f64 >= incr_period) {
        Some(BackupType::Incremental)
    } else {
        None
    }
}

#[test]
fn a_month_of_decisions() {
    let limits = ServerLimits {
        max_backups: 2,
        ..ServerLimits::default()
    };
    let mut hosts = [
        host("desk", BackupMode::Scheduled, |_| true, |_| false),
        host(
            "laptop",
            BackupMode::Scheduled,
            |at| at.hour >= 18.0 && at.hour < 23.0,
            |_| false,
        ),
        host("flaky", BackupMode::Scheduled, |_| true, |n| n % 3 == 1),
        host("down", BackupMode::Scheduled, |_| false, |_| false),
        host("manual", BackupMode::Manual, |_| true, |_| false),
        host("spare", BackupMode::Scheduled, |_| true, |_| false),
        host(
            "office",
            BackupMode::Scheduled,
            |at| (1..=5).contains(&at.weekday) && at.hour >= 8.0 && at.hour < 18.0,
            |n| n % 4 == 0,
        ),
    ];
    // The office machine counts as usually up after two answers in a row.
    if let Some(office) = hosts.iter_mut().find(|h| h.name == "office") {
        office.policy.blackout_good_count = 2;
    }
    let mut queue = JobQueue::new();
    // Running jobs: host -> (kind, started, ends).
    let mut running: BTreeMap<String, (BackupType, i64, i64)> = BTreeMap::new();
    let mut nightlies = 0;
    let mut most_running = 0;
    let mut now = START;
    loop {
        let wakeup = next_wakeup(now, &limits.wakeup_hours, &chrono::Utc).expect("a wakeup");
        if wakeup.at >= START + 30 * DAY {
            break;
        }
        now = wakeup.at;
        if wakeup.nightly {
            nightlies += 1;
            assert_eq!(LocalTime::of(now, &chrono::Utc).hour, 1.0);
        }
        // Jobs that ended before this wakeup report their result.
        let ended: Vec<String> = running
            .iter()
            .filter(|(_, (_, _, ends))| *ends <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in ended {
            let Some((kind, started, _)) = running.remove(&name) else {
                continue;
            };
            queue.finished(&name);
            let h = hosts
                .iter_mut()
                .find(|h| h.name == name)
                .expect("known host");
            h.attempts += 1;
            if !(h.fails)(h.attempts) {
                h.history.completed(kind, started);
                h.backups.push(started);
                if kind == BackupType::Full {
                    h.fulls.push(started);
                }
            }
        }
        let local = LocalTime::of(now, &chrono::Utc);
        for h in hosts.iter_mut() {
            let reachable = (h.up)(local);
            h.history.observe(reachable, &h.policy);
            if reachable {
                h.ups_in_a_row += 1;
                h.downs_in_a_row = 0;
            } else {
                h.downs_in_a_row += 1;
                if h.downs_in_a_row >= 3 {
                    h.ups_in_a_row = 0;
                }
            }
            let seen = Observation {
                reachable,
                disk_full: false,
            };
            let decision = decide(&h.policy, &h.history, now, local, seen);
            // Check the decision against the rules.
            let due = expected_due(h, now);
            let busy = running.contains_key(h.name) || queue.waiting().any(|j| j.host == h.name);
            match (due, decision) {
                (None, Decision::UpToDate) => {}
                (None, other) => panic!("{} at {now}: nothing due, got {other:?}", h.name),
                (Some(kind), Decision::UpToDate) => {
                    panic!("{} at {now}: {kind:?} due, got up to date", h.name)
                }
                (Some(kind), Decision::Run(k) | Decision::Skipped(k, _)) => {
                    assert_eq!(k, kind, "{} at {now}: wrong type", h.name)
                }
            }
            let expected_skip = if h.policy.backups != BackupMode::Scheduled {
                Some(Skip::Disabled)
            } else if !reachable {
                Some(Skip::Unreachable)
            } else if h.ups_in_a_row >= h.policy.blackout_good_count && in_office_hours(local) {
                Some(Skip::Blackout)
            } else {
                None
            };
            if let Decision::Skipped(_, why) = decision {
                assert_eq!(Some(why), expected_skip, "{} at {now}", h.name);
            }
            if let Decision::Run(kind) = decision {
                assert_eq!(expected_skip, None, "{} at {now}: ran", h.name);
                if !busy {
                    queue
                        .enqueue(QueuedJob {
                            host: h.name.to_string(),
                            kind,
                            origin: Origin::Scheduled,
                        })
                        .expect("queued");
                }
            }
            h.decisions.push((now, decision));
        }
        while let Some(job) = queue.start_next(&limits, true) {
            // Fulls take three hours, incrementals twenty minutes.
            let took = match job.kind {
                BackupType::Full => 3 * HOUR,
                BackupType::Incremental => 20 * 60,
            };
            running.insert(job.host.clone(), (job.kind, now, now + took));
        }
        most_running = most_running.max(running.len());
        assert!(running.len() <= limits.max_backups);
    }

    assert_eq!(nightlies, 30);
    assert_eq!(
        most_running, 2,
        "the concurrency limit was reached and held"
    );
    let by_name = |n: &str| hosts.iter().find(|h| h.name == n).expect("host");

    // The office desktop: backed up daily, fulls weekly, and never in office hours once it
    // was seen up seven times in a row (the first wakeups of the month are before that).
    let desk = by_name("desk");
    assert!(
        desk.fulls.len() >= 4 && desk.fulls.len() <= 5,
        "{:?}",
        desk.fulls
    );
    assert!(desk.backups.len() >= 29, "{}", desk.backups.len());
    for pair in desk.fulls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap as f64 >= 6.97 * DAY as f64 && gap < 8 * DAY,
            "full gap {gap}"
        );
    }
    // A machine up only in office hours: its good count starts again every night, and once
    // it has answered twice in a row the blackout holds back the retry of a failed backup.
    let office = by_name("office");
    assert!(
        office
            .decisions
            .iter()
            .any(|(_, d)| matches!(d, Decision::Skipped(_, Skip::Blackout)))
    );
    assert!(office.backups.len() >= 12, "{}", office.backups.len());
    for t in &office.backups {
        let at = LocalTime::of(*t, &chrono::Utc);
        assert!((1..=5).contains(&at.weekday) && at.hour == 8.0);
    }
    // The laptop is backed up in its evening hours only.
    let laptop = by_name("laptop");
    assert!(laptop.backups.len() >= 25);
    for t in &laptop.backups {
        let at = LocalTime::of(*t, &chrono::Utc);
        assert!(at.hour >= 18.0 && at.hour < 23.0);
    }
    // Failed attempts are retried at the next wakeup.
    let flaky = by_name("flaky");
    assert!(flaky.attempts > flaky.backups.len() as u32);
    assert!(flaky.backups.len() >= 28);
    // The host that is down is skipped at every wakeup and the skip is recorded.
    let down = by_name("down");
    assert!(down.backups.is_empty());
    assert!(
        down.decisions
            .iter()
            .all(|(_, d)| *d == Decision::Skipped(BackupType::Full, Skip::Unreachable))
    );
    // The manual-only host never runs on schedule.
    let manual = by_name("manual");
    assert!(manual.backups.is_empty() && manual.attempts == 0);
    assert!(
        manual
            .decisions
            .iter()
            .all(|(_, d)| matches!(d, Decision::Skipped(_, Skip::Disabled)))
    );
}
