//! Versions as PD reads them (tikv/pd `pkg/versioninfo`, on coreos/go-semver): how a
//! store's version string parses, how two versions compare, and which store versions a
//! cluster version admits.

use std::cmp::Ordering;
use std::fmt;

/// A semantic version. Equality and order ignore build metadata, as go-semver's do.
#[derive(Clone, Debug)]
pub struct Version {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
    pub pre_release: String,
    pub metadata: String,
}

impl Version {
    /// PD's cluster version before any store has registered (a zero `semver.Version`).
    pub const ZERO: Version =
        Version { major: 0, minor: 0, patch: 0, pre_release: String::new(), metadata: String::new() };

    /// PD's `ParseVersion`: an empty string is 1.0.0 (stores older than the version
    /// mechanism), one leading `v` is dropped. `Err` has PD's text.
    pub fn parse_pd(text: &str) -> Result<Version, String> {
        if text.is_empty() {
            return Ok(Version { major: 1, ..Version::ZERO });
        }
        let text = text.strip_prefix('v').unwrap_or(text);
        semver(text).map_err(|e| format!("[PD:semver:ErrSemverNewVersion]{e}"))
    }
}

/// go-semver's `Version.Set`: metadata after the first `+`, pre-release after the
/// first `-`, then exactly three dot-separated integers.
fn semver(text: &str) -> Result<Version, String> {
    let (rest, metadata) = text.split_once('+').unwrap_or((text, ""));
    let (core, pre_release) = rest.split_once('-').unwrap_or((rest, ""));
    let parts: Vec<&str> = core.splitn(3, '.').collect();
    if parts.len() != 3 {
        return Err(format!("{core} is not in dotted-tri format"));
    }
    for (what, id) in [("pre-release", pre_release), ("metadata", metadata)] {
        let valid = id.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !id.is_empty() && !valid {
            return Err(format!("failed to validate {what}: {id} is not a valid semver identifier"));
        }
    }
    let mut numbers = [0i64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        *slot = part.parse().map_err(|_| format!("strconv.ParseInt: parsing {part:?}: invalid syntax"))?;
    }
    Ok(Version {
        major: numbers[0],
        minor: numbers[1],
        patch: numbers[2],
        pre_release: pre_release.to_owned(),
        metadata: metadata.to_owned(),
    })
}

/// go-semver's pre-release precedence: none beats some; then identifier by identifier,
/// numbers below words; more identifiers win a tie.
fn pre_release_cmp(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| pre_release_cmp(&self.pre_release, &other.pre_release))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre_release.is_empty() {
            write!(f, "-{}", self.pre_release)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

/// PD's `IsCompatible(cluster, store)` as `checkStoreVersion` calls it: a store newer
/// than the cluster version is admitted, and so is one of the same major.minor (an older
/// patch too); any other older store is refused.
pub fn is_compatible(cluster: &Version, store: &Version) -> bool {
    cluster < store || (cluster.major == store.major && cluster.minor == store.minor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse_pd(text).unwrap()
    }

    #[test]
    fn parses_like_pd() {
        assert_eq!(v("v8.5.0").to_string(), "8.5.0");
        assert_eq!(v("8.5.0-alpha.1+abc").to_string(), "8.5.0-alpha.1+abc");
        assert_eq!(v("").to_string(), "1.0.0");
        assert_eq!(
            Version::parse_pd("8.5").unwrap_err(),
            "[PD:semver:ErrSemverNewVersion]8.5 is not in dotted-tri format"
        );
        assert_eq!(
            Version::parse_pd("8.x.0").unwrap_err(),
            "[PD:semver:ErrSemverNewVersion]strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert!(Version::parse_pd("8.5.0-al_pha").is_err());
    }

    #[test]
    fn orders_like_go_semver() {
        assert!(v("8.4.9") < v("8.5.0"));
        assert!(v("8.5.0-alpha") < v("8.5.0"));
        assert!(v("8.5.0-alpha.2") < v("8.5.0-alpha.10"));
        assert!(v("8.5.0-alpha.1") < v("8.5.0-alpha.beta"));
        assert!(v("8.5.0-alpha") < v("8.5.0-alpha.1"));
        assert_eq!(v("8.5.0+a"), v("8.5.0+b"));
        assert_eq!(Version::ZERO.to_string(), "0.0.0");
    }

    #[test]
    fn older_minor_is_incompatible_older_patch_is_not() {
        let cluster = v("8.5.2");
        assert!(is_compatible(&cluster, &v("8.5.2")));
        assert!(is_compatible(&cluster, &v("8.5.0")));
        assert!(is_compatible(&cluster, &v("8.6.0")));
        assert!(is_compatible(&cluster, &v("9.0.0")));
        assert!(!is_compatible(&cluster, &v("8.4.9")));
        assert!(!is_compatible(&cluster, &v("7.5.0")));
        assert!(is_compatible(&Version::ZERO, &v("7.5.0")));
    }
}
