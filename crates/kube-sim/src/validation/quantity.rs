//! Kubernetes resource quantities (`10Gi`, `500m`, `1e3`), compared as numbers.

/// The quantity's value, or `None` if it does not parse.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(super::parse("1Gi"), Some(1073741824.0));
        assert_eq!(super::parse("500m"), Some(0.5));
        assert_eq!(super::parse("2e3"), Some(2000.0));
        assert!(super::parse("1Gi") > super::parse("1G"));
        assert_eq!(super::parse("abc"), None);
    }
}
