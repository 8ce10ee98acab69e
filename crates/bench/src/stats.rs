//! Percentiles of samples, and quantiles of the operator's Prometheus histograms (read
//! from its `/metrics` text, summed over every label set).

use std::collections::BTreeMap;
use std::time::Duration;

/// A histogram as the exposition gives it: cumulative counts by upper bound (`+Inf`
/// as infinity), summed over every series of the family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// (upper bound, cumulative count), ascending bounds.
    pub buckets: Vec<(f64, f64)>,
}

/// A quantile read off a histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantile {
    /// Interpolated inside its bucket, as Prometheus' `histogram_quantile` does.
    Within(f64),
    /// Above the highest finite bound (the value is that bound).
    Above(f64),
    /// No observation.
    Empty,
}

impl Histogram {
    /// The `<name>_bucket` series of an OpenMetrics/Prometheus text exposition, summed.
    pub fn parse(exposition: &str, name: &str) -> Histogram {
        let bucket = format!("{name}_bucket");
        let mut sums: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for line in exposition.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Some(labels) = series.strip_prefix(&bucket).and_then(|r| r.strip_prefix('{')) else { continue };
            let Some(le) = labels.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            let Ok(count) = value.trim().parse::<f64>() else { continue };
            if bound.is_nan() {
                continue;
            }
            // Ordered by bound: the bit pattern of a non-negative float sorts like it.
            let entry = sums.entry(bound.to_bits()).or_insert((bound, 0.0));
            entry.1 += count;
        }
        Histogram { buckets: sums.into_values().collect() }
    }

    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// The `q` quantile (0..=1), linearly interpolated inside its bucket (the first
    /// bucket from zero).
    pub fn quantile(&self, q: f64) -> Quantile {
        let total = self.count();
        if total <= 0.0 {
            return Quantile::Empty;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank && cumulative > lower.1 {
                if bound.is_infinite() {
                    return Quantile::Above(lower.0);
                }
                let share = (rank - lower.1) / (cumulative - lower.1);
                return Quantile::Within(lower.0 + (bound - lower.0) * share);
            }
            lower = (bound, cumulative);
        }
        Quantile::Above(lower.0)
    }
}

impl Quantile {
    /// `12.3 ms`, `> 5000 ms`, `-`.
    pub fn millis(self) -> String {
        match self {
            Quantile::Within(s) => crate::report::millis(Duration::from_secs_f64(s)),
            Quantile::Above(s) => format!("> {}", crate::report::millis(Duration::from_secs_f64(s))),
            Quantile::Empty => "-".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE tikv_operator_pass_duration_seconds histogram
tikv_operator_pass_duration_seconds_sum{controller=\"tikv\",outcome=\"complete\"} 0.3
tikv_operator_pass_duration_seconds_count{controller=\"tikv\",outcome=\"complete\"} 60
tikv_operator_pass_duration_seconds_bucket{controller=\"tikv\",outcome=\"complete\",le=\"0.001\"} 40
tikv_operator_pass_duration_seconds_bucket{controller=\"tikv\",outcome=\"complete\",le=\"0.01\"} 50
tikv_operator_pass_duration_seconds_bucket{controller=\"tikv\",outcome=\"complete\",le=\"+Inf\"} 60
tikv_operator_pass_duration_seconds_bucket{controller=\"pd\",outcome=\"wait\",le=\"0.001\"} 40
tikv_operator_pass_duration_seconds_bucket{controller=\"pd\",outcome=\"wait\",le=\"0.01\"} 40
tikv_operator_pass_duration_seconds_bucket{controller=\"pd\",outcome=\"wait\",le=\"+Inf\"} 40
tikv_operator_task_duration_seconds_bucket{controller=\"pd\",task=\"x\",status=\"wait\",le=\"0.001\"} 9
";

    #[test]
    fn a_family_is_summed_over_its_series_and_only_its_own() {
        let h = Histogram::parse(TEXT, "tikv_operator_pass_duration_seconds");
        assert_eq!(h.buckets, vec![(0.001, 80.0), (0.01, 90.0), (f64::INFINITY, 100.0)]);
        assert_eq!(h.count(), 100.0);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let h = Histogram::parse(TEXT, "tikv_operator_pass_duration_seconds");
        // Rank 50 of 80 in the first bucket [0, 1 ms].
        let Quantile::Within(p50) = h.quantile(0.5) else { panic!() };
        assert!((p50 - 0.000_625).abs() < 1e-9, "{p50}");
        // Rank 85: halfway through (1 ms, 10 ms].
        let Quantile::Within(p85) = h.quantile(0.85) else { panic!() };
        assert!((p85 - 0.0055).abs() < 1e-9, "{p85}");
        // Rank 99 falls in +Inf: above the last finite bound.
        assert_eq!(h.quantile(0.99), Quantile::Above(0.01));
        assert_eq!(Histogram::default().quantile(0.5), Quantile::Empty);
    }
}
