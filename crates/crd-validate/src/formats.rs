//! The string `format`s kube-apiserver checks on custom resources (those of its
//! `supportedFormats` list, as validated by kube-openapi's `strfmt` registry), and the
//! parsers for formats that CEL sees as typed values (`duration`, `date`, `date-time`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use regex::Regex;

// Constant patterns: `None` would mean a typo here (a unit test compiles them all), and
// matching then fails closed instead of panicking.
static HOSTNAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
    .ok()
});
static UUID: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$").ok());
static UUID3: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$").ok());
static UUID4: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$").ok());
static UUID5: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$").ok());
static BASE64: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$").ok()
});
static HEXCOLOR: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").ok());
static RGBCOLOR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$",
    )
    .ok()
});
static SSN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$").ok());
static TIME_OF_DAY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(z|[+-]\d{2}:\d{2})$").ok());
static DURATION_PART: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"((\d+)\s*([A-Za-zµ]+))").ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

/// The formats kube-apiserver keeps on `type: string` fields and checks.
const SUPPORTED: [&str; 25] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

/// Whether `value` satisfies `format`; `None` when kube-apiserver does not check the format.
pub(crate) fn check(format: &str, value: &str) -> Option<bool> {
    if !SUPPORTED.contains(&format) {
        return None;
    }
    Some(match format {
        "bsonobjectid" => value.len() == 24 && value.chars().all(|c| c.is_ascii_hexdigit()),
        "uri" => is_request_uri(value),
        "email" => is_email(value),
        "hostname" => is_hostname(value),
        "ipv4" => value.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => value.contains(':') && value.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(value),
        "mac" => is_mac(value),
        "uuid" => matches(&UUID, value),
        "uuid3" => matches(&UUID3, value),
        "uuid4" => matches(&UUID4, value),
        "uuid5" => matches(&UUID5, value),
        "isbn" => is_isbn10(value) || is_isbn13(value),
        "isbn10" => is_isbn10(value),
        "isbn13" => is_isbn13(value),
        "creditcard" => is_credit_card(value),
        "ssn" => value.len() >= 9 && value.len() <= 11 && matches(&SSN, value),
        "hexcolor" => matches(&HEXCOLOR, value),
        "rgbcolor" => matches(&RGBCOLOR, value),
        "byte" => matches(&BASE64, value),
        "date" => parse_date(value).is_some(),
        "duration" => parse_duration(value).is_some(),
        "datetime" | "date-time" => is_date_time(value),
        _ => true, // "password"
    })
}

fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
}

fn is_email(s: &str) -> bool {
    let address = match (s.rfind('<'), s.ends_with('>')) {
        (Some(start), true) => &s[start + 1..s.len() - 1],
        _ => s,
    };
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    }
}

fn is_hostname(s: &str) -> bool {
    matches(&HOSTNAME, s) && s.len() <= 255 && s.split('.').all(|label| label.len() <= 63)
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = prefix.parse::<u8>() else {
        return false;
    };
    if prefix.len() > 1 && prefix.starts_with('0') {
        return false;
    }
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// `net.ParseMAC`: 6, 8 or 20 octets, as `xx:xx..`, `xx-xx..` or `xxxx.xxxx..`.
fn is_mac(s: &str) -> bool {
    let hex = |part: &str, len: usize| part.len() == len && part.chars().all(|c| c.is_ascii_hexdigit());
    let octets_ok = |n: usize| n == 6 || n == 8 || n == 20;
    if s.contains(':') || s.contains('-') {
        let sep = if s.contains(':') { ':' } else { '-' };
        let parts: Vec<&str> = s.split(sep).collect();
        octets_ok(parts.len()) && parts.iter().all(|p| hex(p, 2))
    } else {
        let parts: Vec<&str> = s.split('.').collect();
        octets_ok(parts.len() * 2) && parts.iter().all(|p| hex(p, 4))
    }
}

fn digits_without_separators(s: &str) -> String {
    s.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

fn is_isbn10(s: &str) -> bool {
    let d = digits_without_separators(s);
    let bytes = d.as_bytes();
    if bytes.len() != 10
        || !bytes[..9].iter().all(u8::is_ascii_digit)
        || !(bytes[9].is_ascii_digit() || bytes[9] == b'X')
    {
        return false;
    }
    let sum: u32 = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let v = if *b == b'X' { 10 } else { u32::from(b - b'0') };
            (i as u32 + 1) * v
        })
        .sum();
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d = digits_without_separators(s);
    let bytes = d.as_bytes();
    if bytes.len() != 13 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 =
        bytes[..12].iter().enumerate().map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 }).sum();
    (10 - sum % 10) % 10 == u32::from(bytes[12] - b'0')
}

fn is_credit_card(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() < 13 || d.len() > 19 || s.chars().any(|c| !c.is_ascii_digit() && c != ' ' && c != '-') {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, v)| {
            if i % 2 == 1 {
                let dbl = v * 2;
                if dbl > 9 { dbl - 9 } else { dbl }
            } else {
                *v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// strfmt's `IsDateTime`: an RFC 3339 date, `T`, a time of day and a zone.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || parse_date(parts[0]).is_none() {
        return false;
    }
    let Some(caps) = TIME_OF_DAY.as_ref().and_then(|re| re.captures(parts[1])) else {
        return false;
    };
    let field = |i: usize| caps.get(i).map_or("99", |m| m.as_str());
    field(1) <= "23" && field(2) <= "59" && field(3) <= "59"
}

/// A `YYYY-MM-DD` date, at midnight UTC.
pub(crate) fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(s[0..4].parse().ok()?, s[5..7].parse().ok()?, s[8..10].parse().ok()?)?;
    let utc = FixedOffset::east_opt(0)?;
    utc.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).single()
}

/// A `date-time` as strfmt parses it: RFC 3339, or without a zone (taken as UTC).
pub(crate) fn parse_date_time(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt);
    }
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt);
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    FixedOffset::east_opt(0)?.from_local_datetime(&naive).single()
}

/// A duration in nanoseconds: Go's `time.ParseDuration` syntax (`1h30m`, `-1.5s`), or
/// strfmt's wordier fallback (`3 days`, `2w`).
pub(crate) fn parse_duration(s: &str) -> Option<i128> {
    go_duration(s).or_else(|| scala_duration(s))
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

fn go_duration(input: &str) -> Option<i128> {
    let (negative, mut s) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = s.char_indices().find(|(_, c)| c.is_ascii_digit() || *c == '.').map_or(s.len(), |(i, _)| i);
        let unit = unit_nanos(&s[..unit_len])?;
        s = &s[unit_len..];
        let whole: i128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        total = total.checked_add(whole.checked_mul(unit)?)?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(30) as u32;
            let frac: i128 = frac_part[..digits as usize].parse().ok()?;
            total = total.checked_add(frac.checked_mul(unit)? / 10i128.checked_pow(digits)?)?;
        }
    }
    Some(if negative { -total } else { total })
}

fn scala_duration(s: &str) -> Option<i128> {
    const UNITS: [(&[&str], i128); 8] = [
        (&["ns", "nano"], 1),
        (&["us", "µs", "micro"], 1_000),
        (&["ms", "milli"], 1_000_000),
        (&["s", "sec"], 1_000_000_000),
        (&["m", "min"], 60_000_000_000),
        (&["h", "hr", "hour"], 3_600_000_000_000),
        (&["d", "day"], 86_400_000_000_000),
        (&["w", "wk", "week"], 604_800_000_000_000),
    ];
    let re = DURATION_PART.as_ref()?;
    let mut total: i128 = 0;
    let mut found = false;
    for caps in re.captures_iter(s) {
        let factor: i128 = caps.get(2)?.as_str().parse().ok()?;
        let unit = caps.get(3)?.as_str().trim().to_lowercase();
        for (variants, nanos) in UNITS {
            let last = variants.len() - 1;
            for (i, variant) in variants.iter().enumerate() {
                if (i == last && unit.starts_with(variant)) || unit.eq_ignore_ascii_case(variant) {
                    found = true;
                    total = total.checked_add(factor.checked_mul(nanos)?)?;
                }
            }
        }
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_patterns_compile() {
        for re in [
            &HOSTNAME,
            &UUID,
            &UUID3,
            &UUID4,
            &UUID5,
            &BASE64,
            &HEXCOLOR,
            &RGBCOLOR,
            &SSN,
            &TIME_OF_DAY,
            &DURATION_PART,
        ] {
            assert!(re.is_some());
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5s"), Some(-1_500_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("3 days"), Some(3 * 86_400_000_000_000));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("10"), None);
    }

    #[test]
    fn some_formats() {
        assert_eq!(check("date-time", "2024-01-02T03:04:05Z"), Some(true));
        assert_eq!(check("date-time", "2024-01-02"), Some(false));
        assert_eq!(check("date", "2024-02-30"), Some(false));
        assert_eq!(check("ipv4", "10.0.0.1"), Some(true));
        assert_eq!(check("ipv4", "10.0.0"), Some(false));
        assert_eq!(check("cidr", "10.0.0.0/8"), Some(true));
        assert_eq!(check("hostname", "pd-0.pd.svc"), Some(true));
        assert_eq!(check("uuid", "not-a-uuid"), Some(false));
        assert_eq!(check("mac", "01:23:45:67:89:ab"), Some(true));
        assert_eq!(check("int32", "x"), None);
        assert_eq!(check("k8s-short-name", "x"), None);
    }
}
