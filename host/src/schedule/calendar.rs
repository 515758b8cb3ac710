//! The local weekday and hour of a moment: what wakeup schedules and blackout periods are
//! written in.

use chrono::{Datelike, TimeZone, Timelike};

/// Seconds since the Unix epoch (UTC): the scheduler's notion of a moment.
pub type UnixTime = i64;

/// A moment as the admin's calendar sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalTime {
    /// Day of the week, 0 = Sunday .. 6 = Saturday (BackupPC's numbering).
    pub weekday: u8,
    /// Hours since local midnight, fractional (13.5 is 13:30).
    pub hour: f64,
}

impl LocalTime {
    /// `t` in time zone `zone`.
    pub fn of<Tz: TimeZone>(t: UnixTime, zone: &Tz) -> LocalTime {
        let utc = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        let local = utc.with_timezone(zone);
        LocalTime {
            weekday: local.weekday().num_days_from_sunday() as u8,
            hour: f64::from(local.hour())
                + f64::from(local.minute()) / 60.0
                + f64::from(local.second()) / 3600.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_and_fractional_hour() {
        // 2026-11-25 was a Wednesday; 13:30 UTC.
        let t = 1_795_613_400;
        let utc = LocalTime::of(t, &chrono::Utc);
        assert_eq!(utc.weekday, 3);
        assert!((utc.hour - 13.5).abs() < 1e-9);
        let east = chrono::FixedOffset::east_opt(11 * 3600).unwrap_or_else(|| unreachable!());
        let there = LocalTime::of(t, &east);
        assert_eq!(there.weekday, 4);
        assert!((there.hour - 0.5).abs() < 1e-9);
    }
}
