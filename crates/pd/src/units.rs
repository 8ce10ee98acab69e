//! PD's value encodings: byte sizes (`"93.5GiB"`, docker/go-units) and Go durations
//! (`"1h2m3.456s"`).

use std::time::Duration;

/// Parses a size as PD writes it (`"1.968TiB"`, `"0B"`, `"512MiB"`) into bytes.
///
/// PD writes sizes with four significant digits, so the result is as exact as the text.
/// The parser accepts what go-units' `RAMInBytes` accepts: binary units, with or
/// without `i`/`B`, in any case (`"1g"`, `"1GB"` and `"1GiB"` are all 2^30).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("invalid size {text:?}: no number"));
    }
    let value: f64 = number.parse().map_err(|_| format!("invalid size {text:?}: bad number"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => return Err(format!("invalid size {text:?}: unknown unit")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size {text:?}: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a Go duration string (`"30m0s"`, `"1h0m0.123456789s"`, `"10ms"`, `"0s"`).
/// Negative durations are refused: none of PD's durations the operator reads can be negative.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let original = text;
    let mut rest = text.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest.starts_with('-') {
        return Err(format!("negative duration {original:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {original:?}"));
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration {original:?}"));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(format!("invalid duration {original:?}: unit {unit:?}")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(format!("invalid duration {original:?}"));
        }
        let whole: u128 =
            if whole.is_empty() { 0 } else { whole.parse().map_err(|_| format!("invalid duration {original:?}"))? };
        let mut part = whole.checked_mul(unit_nanos).ok_or_else(|| format!("duration {original:?} overflows"))?;
        // Fractions are exact to the nanosecond: digits beyond the unit's precision are dropped.
        let mut scale = unit_nanos;
        for digit in fraction.chars() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            let d = digit.to_digit(10).ok_or_else(|| format!("invalid duration {original:?}"))?;
            part += u128::from(d) * scale;
        }
        total_nanos = total_nanos.checked_add(part).ok_or_else(|| format!("duration {original:?} overflows"))?;
        rest = after;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| format!("duration {original:?} overflows"))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// Serde helpers for the encodings above.
pub(crate) mod serde_helpers {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// A size written as PD's string, or (leniently) as a number of bytes.
    pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Bytes(u64),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Bytes(b)) => Ok(Some(b)),
            Some(Raw::Text(t)) => super::parse_size(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) => super::parse_go_duration(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    /// A bool written with Go's `,string` option (`"true"`), or plainly.
    pub fn quoted_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Plain(bool),
        }
        match Raw::deserialize(d)? {
            Raw::Plain(b) => Ok(b),
            Raw::Text(t) => match t.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(serde::de::Error::custom(format!("invalid quoted bool {other:?}"))),
            },
        }
    }

    /// A string slice written as one comma-joined string (`"zone,rack,host"`), or as an array.
    pub fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Joined(String),
            List(Vec<String>),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => Vec::new(),
            Some(Raw::List(list)) => list,
            Some(Raw::Joined(text)) => {
                text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_pd_writes_them() {
        assert_eq!(parse_size("0B").unwrap(), 0);
        assert_eq!(parse_size("100GiB").unwrap(), 100 << 30);
        assert_eq!(parse_size("93.5GiB").unwrap(), (93.5 * (1u64 << 30) as f64) as u64);
        assert_eq!(parse_size("1.968TiB").unwrap(), (1.968 * (1u64 << 40) as f64).round() as u64);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1023B").unwrap(), 1023);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("12XB").is_err());
    }

    #[test]
    fn go_durations() {
        let d = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(d("30m0s"), Duration::from_secs(1800));
        assert_eq!(d("48h0m0s"), Duration::from_secs(48 * 3600));
        assert_eq!(d("1h0m0.123456789s"), Duration::new(3600, 123_456_789));
        assert_eq!(d("1h2m3.456s"), Duration::new(3723, 456_000_000));
        assert_eq!(d("10ms"), Duration::from_millis(10));
        assert_eq!(d("1.5µs"), Duration::from_nanos(1500));
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d("0"), Duration::ZERO);
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
