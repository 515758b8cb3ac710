//! The wakeup schedule: hours of the local day at which the scheduler looks at every host.
//! The first hour listed also runs the nightly maintenance (BackupPC's convention).

use chrono::{Days, NaiveTime, TimeZone};

use super::calendar::UnixTime;

/// One wakeup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    /// When.
    pub at: UnixTime,
    /// Whether the nightly maintenance runs at this one.
    pub nightly: bool,
}

/// The first wakeup strictly after `after`, or `None` when `hours` is empty or holds no
/// valid hour. Local times that do not exist (a daylight-saving gap) are skipped.
pub fn next_wakeup<Tz: TimeZone>(after: UnixTime, hours: &[f64], zone: &Tz) -> Option<Wakeup> {
    let first = *hours.first()?;
    let start = chrono::DateTime::from_timestamp(after, 0)?
        .with_timezone(zone)
        .date_naive();
    let mut best: Option<Wakeup> = None;
    for day in 0..3u64 {
        let date = start.checked_add_days(Days::new(day))?;
        for &hour in hours {
            if !(0.0..24.0).contains(&hour) {
                continue;
            }
            let secs = (hour * 3600.0).round() as u32;
            let Some(time) = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0) else {
                continue;
            };
            let Some(local) = zone.from_local_datetime(&date.and_time(time)).earliest() else {
                continue;
            };
            let at = local.timestamp();
            if at > after && best.is_none_or(|b| at < b.at) {
                best = Some(Wakeup {
                    at,
                    nightly: hour == first,
                });
            }
        }
        if best.is_some() {
            return best;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hour_today_then_tomorrow() {
        // 2026-11-25 13:30 UTC.
        let t = 1_795_613_400;
        let hours = [1.0, 13.0, 22.5];
        let w = next_wakeup(t, &hours, &chrono::Utc).expect("a wakeup");
        assert_eq!(w.at - t, 9 * 3600);
        assert!(!w.nightly);
        let after_last = next_wakeup(w.at, &hours, &chrono::Utc).expect("a wakeup");
        assert_eq!(after_last.at - w.at, 2 * 3600 + 30 * 60);
        assert!(after_last.nightly);
        assert!(next_wakeup(t, &[], &chrono::Utc).is_none());
        assert!(next_wakeup(t, &[24.5], &chrono::Utc).is_none());
    }
}
