//! Blackout periods: hours of given weekdays in which a host that is usually up (a desktop
//! at the office) is not backed up on schedule, so backups do not load it while people work.
//! BackupPC's `BlackoutPeriods`; they apply only once the host has been seen up
//! `blackout_good_count` times in a row, and never to a backup a user asked for.

use serde::{Deserialize, Serialize};

use super::LocalTime;

/// One blackout period: from `hour_begin` to `hour_end` on each of `week_days`. When
/// `hour_begin > hour_end` the period runs across midnight: it starts on a listed day and
/// ends on the next morning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackoutPeriod {
    /// Start, in hours since local midnight (7.5 is 07:30).
    pub hour_begin: f64,
    /// End, in hours since local midnight.
    pub hour_end: f64,
    /// Days the period starts on, 0 = Sunday .. 6 = Saturday.
    pub week_days: Vec<u8>,
}

/// Hours are checked to lie within 0..=24 when the config loads, so they are never NaN.
impl Eq for BlackoutPeriod {}

impl BlackoutPeriod {
    /// BackupPC's default: 07:00 to 19:30, Monday to Friday.
    pub fn office_hours() -> BlackoutPeriod {
        BlackoutPeriod {
            hour_begin: 7.0,
            hour_end: 19.5,
            week_days: vec![1, 2, 3, 4, 5],
        }
    }

    /// Whether `at` falls inside this period.
    pub fn covers(&self, at: LocalTime) -> bool {
        let listed = |day: u8| self.week_days.contains(&day);
        if self.hour_begin <= self.hour_end {
            listed(at.weekday) && at.hour >= self.hour_begin && at.hour <= self.hour_end
        } else {
            let yesterday = (at.weekday + 6) % 7;
            (listed(at.weekday) && at.hour >= self.hour_begin)
                || (listed(yesterday) && at.hour <= self.hour_end)
        }
    }

    /// A description of what is wrong with the period, if anything.
    pub fn invalid(&self) -> Option<String> {
        let hour_ok = |h: f64| (0.0..=24.0).contains(&h);
        if !hour_ok(self.hour_begin) || !hour_ok(self.hour_end) {
            return Some(format!(
                "blackout hours must be within 0..24, got {}..{}",
                self.hour_begin, self.hour_end
            ));
        }
        if let Some(day) = self.week_days.iter().find(|d| **d > 6) {
            return Some(format!(
                "blackout week day {day} is not 0 (Sunday) .. 6 (Saturday)"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: u8, hour: f64) -> LocalTime {
        LocalTime { weekday, hour }
    }

    #[test]
    fn office_hours_cover_weekdays_only() {
        let p = BlackoutPeriod::office_hours();
        assert!(p.covers(at(1, 7.0)));
        assert!(p.covers(at(5, 19.5)));
        assert!(!p.covers(at(5, 19.6)));
        assert!(!p.covers(at(3, 6.9)));
        assert!(!p.covers(at(0, 12.0)));
        assert!(!p.covers(at(6, 12.0)));
    }

    #[test]
    fn across_midnight_ends_the_next_morning() {
        // Friday 22:00 to Saturday 06:00.
        let p = BlackoutPeriod {
            hour_begin: 22.0,
            hour_end: 6.0,
            week_days: vec![5],
        };
        assert!(p.covers(at(5, 23.0)));
        assert!(p.covers(at(6, 5.5)));
        assert!(!p.covers(at(6, 23.0)));
        assert!(!p.covers(at(5, 5.0)));
        // Saturday start wraps to Sunday morning.
        let sat = BlackoutPeriod {
            week_days: vec![6],
            ..p
        };
        assert!(sat.covers(at(0, 1.0)));
    }

    #[test]
    fn bad_periods_are_named() {
        let p = BlackoutPeriod {
            hour_begin: 25.0,
            hour_end: 1.0,
            week_days: vec![1],
        };
        assert!(p.invalid().is_some());
        let q = BlackoutPeriod {
            week_days: vec![7],
            ..BlackoutPeriod::office_hours()
        };
        assert!(q.invalid().is_some_and(|m| m.contains('7')));
        assert!(BlackoutPeriod::office_hours().invalid().is_none());
    }
}
