//! PD's value encodings: Go duration strings, go-units byte sizes, RFC 3339 times, and
//! Go's `encoding/json` output (2-space indent, HTML escaping, trailing newline).

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

/// Formats like Go's `time.Duration.String()`: `"0s"`, `"1.5ms"`, `"30m0s"`, `"1h2m3.456s"`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000_000_000 {
        let (unit, div, prec) = if ns < 1_000 {
            ("ns", 1, 0)
        } else if ns < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        return format!("{}{}{unit}", ns / div, fraction(ns % div, prec));
    }
    let secs = ns / 1_000_000_000;
    let s = format!("{}{}s", secs % 60, fraction(ns % 1_000_000_000, 9));
    let mins = secs / 60;
    if mins == 0 {
        return s;
    }
    let hours = mins / 60;
    if hours == 0 { format!("{}m{s}", mins % 60) } else { format!("{hours}h{}m{s}", mins % 60) }
}

fn fraction(frac: u128, width: usize) -> String {
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// Parses a Go duration string (`"1h30m"`, `"500ms"`, `"2.5s"`, `"0"`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Formats like go-units `BytesSize` (PD's `typeutil.ByteSize`): binary units and
/// `%.4g`, e.g. `"100GiB"`, `"93.5GiB"`, `"1.968TiB"`, `"0B"`.
pub fn byte_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", four_significant(size), UNITS[unit])
}

fn four_significant(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let int_digits = (value.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (4 - int_digits).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// RFC 3339 with nanoseconds trimmed of trailing zeros, in UTC (Go's `time.Time` JSON).
pub fn rfc3339(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(ts) => ts.to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}

pub fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn unix_nanos(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Serialises like Go's `encoding/json` with `MarshalIndent(v, "", "  ")` as PD's
/// renderer does: HTML characters escaped, a trailing newline.
pub fn go_json<T: Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// A float written the way Go writes a `float64`: `1`, not `1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GoFloat(pub f64);

impl Serialize for GoFloat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
            serializer.serialize_i64(v as i64)
        } else if v.is_finite() {
            serializer.serialize_f64(v)
        } else {
            serializer.serialize_i64(0)
        }
    }
}

/// serde helpers for `Duration` fields written as Go duration strings.
pub mod go_duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::go_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_go_duration(&text).ok_or_else(|| D::Error::custom(format!("invalid duration {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(1800)), "30m0s");
        assert_eq!(go_duration(Duration::from_secs(48 * 3600)), "48h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(10)), "10ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(3_723_456_000_000)), "1h2m3.456s");
        assert_eq!(go_duration(Duration::from_nanos(3_600_123_456_789)), "1h0m0.123456789s");
        assert_eq!(go_duration(Duration::from_nanos(7)), "7ns");
    }

    #[test]
    fn durations_parse_back() {
        for d in [
            Duration::from_secs(1800),
            Duration::from_millis(1500),
            Duration::from_millis(5),
            Duration::from_secs(3723),
        ] {
            assert_eq!(parse_go_duration(&go_duration(d)), Some(d));
        }
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn byte_sizes_match_go_units() {
        assert_eq!(byte_size(0), "0B");
        assert_eq!(byte_size(100 << 30), "100GiB");
        assert_eq!(byte_size(93 * (1 << 30) + (1 << 29)), "93.5GiB");
        assert_eq!(byte_size(2_163_918_774_272), "1.968TiB");
        assert_eq!(byte_size(1023), "1023B");
        assert_eq!(byte_size(1 << 20), "1MiB");
    }

    #[test]
    fn json_is_indented_escaped_and_ends_with_newline() {
        assert_eq!(go_json("a<b>&c"), "\"a\\u003cb\\u003e\\u0026c\"\n");
        assert_eq!(go_json(&serde_json::json!({"a": [1]})), "{\n  \"a\": [\n    1\n  ]\n}\n");
        assert_eq!(serde_json::to_string(&GoFloat(1.0)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&GoFloat(40.5)).unwrap(), "40.5");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_755_659_472_123_456_789);
        assert_eq!(rfc3339(t), "2025-08-20T03:11:12.123456789Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_755_659_472_500);
        assert_eq!(rfc3339(t), "2025-08-20T03:11:12.5Z");
    }
}
