//! Durations and sizes written the way people write them: `"6.97d"`, `"20h"`, `"1h30m"`,
//! `"4GiB"`, `"512MiB"`. Owns their parsing, their display (which parses back to the same
//! value) and their serde form (a string in RON).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration from the config: one or more `NUMBER UNIT` pairs, the number a decimal
/// (`"6.97d"`, `"0.5s"`, `"1h30m"`); units `s`, `m`, `h`, `d`, `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

/// A size from the config: a number of bytes (`4096`) or a decimal with a unit (`"4GiB"`,
/// `"1.5GB"`, `"512MiB"`); binary units `KiB MiB GiB TiB PiB`, decimal `kB MB GB TB PB`, and
/// `B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration like \"6.97d\", \"20h\" or \"90s\", found {found}{hint}")]
pub struct DurationError {
    /// What was written, as written (a string is quoted).
    pub found: String,
    /// Extra advice, starting with `; ` (empty when there is none).
    pub hint: String,
}

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found {found}{hint}")]
pub struct SizeError {
    /// What was written, as written (a string is quoted).
    pub found: String,
    /// Extra advice, starting with `; ` (empty when there is none).
    pub hint: String,
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Duration units: suffix and length in seconds.
const DURATION_UNITS: [(&str, u128); 5] = [
    ("w", 7 * 86_400),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
];

/// Size units: suffix and length in bytes. Matched exactly, except that `k` and `K` are both
/// accepted for kilo.
const SIZE_UNITS: [(&str, u128); 12] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("PB", 1_000_000_000_000_000),
];

/// A non-negative decimal as an integer and a power of ten: `6.97` is `(697, 100)`.
struct Decimal {
    digits: u128,
    scale: u128,
}

/// Splits a leading decimal number off `text`; `None` when there is none or it is too long.
fn leading_decimal(text: &str) -> Option<(Decimal, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let mut digits: u128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        digits = digits
            .checked_mul(10)?
            .checked_add(u128::from(c.to_digit(10)?))?;
    }
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    Some((Decimal { digits, scale }, rest))
}

impl FromStr for ConfigDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |hint: &str| DurationError {
            found: format!("{input:?}"),
            hint: hint.to_string(),
        };
        let mut rest = input.trim();
        if rest.is_empty() {
            return Err(fail(""));
        }
        let mut nanos: u128 = 0;
        while !rest.is_empty() {
            let (number, after) = leading_decimal(rest).ok_or_else(|| fail(""))?;
            let after = after.trim_start();
            let unit_len = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            if unit.is_empty() {
                return Err(fail("; a number needs a unit: s, m, h, d or w"));
            }
            let (_, seconds) = DURATION_UNITS
                .iter()
                .find(|(suffix, _)| *suffix == unit)
                .ok_or_else(|| fail("; units are s, m, h, d and w"))?;
            let part = number
                .digits
                .checked_mul(seconds * NANOS_PER_SECOND)
                .ok_or_else(|| fail("; too long"))?
                / number.scale;
            nanos = nanos.checked_add(part).ok_or_else(|| fail("; too long"))?;
            rest = after.trim_start();
        }
        let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| fail("; too long"))?;
        let subsec = u32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| fail("; too long"))?;
        Ok(ConfigDuration(Duration::new(seconds, subsec)))
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |hint: &str| SizeError {
            found: format!("{input:?}"),
            hint: hint.to_string(),
        };
        let text = input.trim();
        let (number, unit) = leading_decimal(text).ok_or_else(|| fail(""))?;
        let unit = unit.trim();
        let bytes_per_unit = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(suffix, _)| *suffix == unit)
                .map(|(_, bytes)| *bytes)
                .ok_or_else(|| {
                    if matches!(unit, "K" | "k" | "M" | "G" | "T" | "P") {
                        fail(&format!(
                            "; write \"{unit}iB\" (powers of 1024) or \"{unit}B\" (powers of 1000)"
                        ))
                    } else {
                        fail("; units are B, KiB, MiB, GiB, TiB, PiB, kB, MB, GB, TB and PB")
                    }
                })?
        };
        let bytes = number
            .digits
            .checked_mul(bytes_per_unit)
            .map(|b| b / number.scale)
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| fail("; too large"))?;
        Ok(ByteSize(bytes))
    }
}

/// Writes `value / unit` with at most two decimals when that is exact and at least 0.01;
/// `None` otherwise.
fn exact_in(value: u128, unit: u128) -> Option<String> {
    if value * 100 < unit || !(value * 100).is_multiple_of(unit) {
        return None;
    }
    let hundredths = value * 100 / unit;
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    Some(match fraction {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    })
}

impl fmt::Display for ConfigDuration {
    /// Whole days, hours or minutes when it is one (`"20h"`); seconds under an hour
    /// (`"90s"`); else days, hours or minutes with two decimals when exact (`"6.97d"`); else
    /// seconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let larger = &DURATION_UNITS[1..4];
        for (suffix, seconds) in larger {
            let unit = seconds * NANOS_PER_SECOND;
            if nanos >= unit && nanos.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", nanos / unit);
            }
        }
        if nanos >= 3_600 * NANOS_PER_SECOND {
            for (suffix, seconds) in larger {
                if let Some(number) = exact_in(nanos, seconds * NANOS_PER_SECOND) {
                    return write!(f, "{number}{suffix}");
                }
            }
        }
        let text = format!("{}.{:09}", self.0.as_secs(), self.0.subsec_nanos());
        write!(f, "{}s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = u128::from(self.0);
        // Largest unit first; binary before decimal at the same magnitude.
        let mut units: Vec<&(&str, u128)> = SIZE_UNITS.iter().filter(|(s, _)| *s != "KB").collect();
        units.sort_by_key(|unit| std::cmp::Reverse(unit.1));
        for (suffix, per_unit) in units {
            if *per_unit > 1
                && bytes >= *per_unit
                && let Some(number) = exact_in(bytes, *per_unit)
            {
                return write!(f, "{number}{suffix}");
            }
        }
        write!(f, "{bytes}B")
    }
}

impl ConfigDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl From<ConfigDuration> for Duration {
    fn from(value: ConfigDuration) -> Self {
        value.0
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"6.97d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(DurationError {
                    found: v.to_string(),
                    hint: format!("; write it as a string with a unit, e.g. \"{v}s\""),
                }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(DurationError {
                    found: v.to_string(),
                    hint: String::new(),
                }))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(DurationError {
                    found: v.to_string(),
                    hint: format!("; write it as a string with a unit, e.g. \"{v}d\""),
                }))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like \"4GiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| {
                    E::custom(SizeError {
                        found: v.to_string(),
                        hint: String::new(),
                    })
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(SizeError {
                    found: v.to_string(),
                    hint: "; a fraction needs a unit, e.g. \"1.5GiB\"".into(),
                }))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let table: &[(&str, Duration)] = &[
            ("90s", Duration::from_secs(90)),
            ("20h", Duration::from_secs(72_000)),
            ("6.97d", Duration::from_secs(602_208)),
            ("0.97d", Duration::from_secs(83_808)),
            ("1w", Duration::from_secs(604_800)),
            ("30m", Duration::from_secs(1_800)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1h 30m", Duration::from_secs(5_400)),
            (" 2 d ", Duration::from_secs(172_800)),
            ("0.5s", Duration::from_millis(500)),
            (".5h", Duration::from_secs(1_800)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in table {
            assert_eq!(
                text.parse::<ConfigDuration>(),
                Ok(ConfigDuration(*expected)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_refused() {
        let table: &[(&str, &str)] = &[
            (
                "6x",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"6x\"; units are s, m, h, d and w",
            ),
            (
                "72000",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"72000\"; a number needs a unit: s, m, h, d or w",
            ),
            (
                "",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"\"",
            ),
            (
                "-1s",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"-1s\"",
            ),
            (
                "1..2h",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"1..2h\"",
            ),
            (
                "h",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"h\"",
            ),
            (
                "1 day",
                "expected a duration like \"6.97d\", \"20h\" or \"90s\", found \"1 day\"; units are s, m, h, d and w",
            ),
        ];
        for (text, message) in table {
            let error = text.parse::<ConfigDuration>().expect_err(text);
            assert_eq!(error.to_string(), *message, "{text}");
        }
        assert!(
            "99999999999999999999999w"
                .parse::<ConfigDuration>()
                .is_err()
        );
    }

    #[test]
    fn durations_display_round_trips() {
        for text in [
            "6.97d", "0.97d", "20h", "90s", "30m", "0.5s", "0s", "36h", "1d", "0.001s", "59m",
        ] {
            let parsed: ConfigDuration = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.to_string().parse::<ConfigDuration>(), Ok(parsed));
        }
        assert_eq!(
            ConfigDuration(Duration::from_secs(604_800)).to_string(),
            "7d"
        );
        assert_eq!(ConfigDuration(Duration::from_secs(61)).to_string(), "61s");
        assert_eq!(
            ConfigDuration(Duration::from_secs(5_400)).to_string(),
            "90m"
        );
        assert_eq!(
            ConfigDuration(Duration::from_secs(3_601)).to_string(),
            "3601s"
        );
    }

    #[test]
    fn sizes_parse() {
        let table: &[(&str, u64)] = &[
            ("4GiB", 4 << 30),
            ("512MiB", 512 << 20),
            ("1.5GiB", 3 << 29),
            ("4 GiB", 4 << 30),
            ("1kB", 1_000),
            ("1KB", 1_000),
            ("2MB", 2_000_000),
            ("3GB", 3_000_000_000),
            ("1TiB", 1 << 40),
            ("1PiB", 1 << 50),
            ("100B", 100),
            ("4096", 4096),
            ("0", 0),
        ];
        for (text, expected) in table {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(*expected)), "{text}");
        }
    }

    #[test]
    fn sizes_refused() {
        let table: &[(&str, &str)] = &[
            (
                "4G",
                "expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found \"4G\"; write \"GiB\" (powers of 1024) or \"GB\" (powers of 1000)",
            ),
            (
                "4gib",
                "expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found \"4gib\"; units are B, KiB, MiB, GiB, TiB, PiB, kB, MB, GB, TB and PB",
            ),
            (
                "lots",
                "expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found \"lots\"",
            ),
            (
                "-1MiB",
                "expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found \"-1MiB\"",
            ),
            (
                "99999PiB",
                "expected a size like \"4GiB\", \"512MiB\" or a number of bytes, found \"99999PiB\"; too large",
            ),
        ];
        for (text, message) in table {
            let error = text.parse::<ByteSize>().expect_err(text);
            assert_eq!(error.to_string(), *message, "{text}");
        }
    }

    #[test]
    fn sizes_display_round_trips() {
        for text in [
            "4GiB", "512MiB", "1.5GiB", "1kB", "3GB", "100B", "0B", "1023B",
        ] {
            let parsed: ByteSize = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(ByteSize(1024).to_string(), "1KiB");
    }
}
