//! HdrHistogram "percentile distribution" text files (`.hgrm`).
//!
//! The output reproduces, byte for byte in layout, what Java's
//! `AbstractHistogram.outputPercentileDistribution(out, 5, 1000.0)` prints for
//! a histogram of microseconds: values are divided by 1000 and so read in
//! milliseconds. That is the format the HdrHistogram plotter
//! (`plotFiles.html`) and most HdrHistogram tooling load:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.101 0.000000000000          1           1.00
//!        ...
//!       10.007 1.000000000000      10000
//! #[Mean    =        5.054, StdDeviation   =        2.887]
//! #[Max     =       10.007, Total count    =        10000]
//! #[Buckets =           15, SubBuckets     =         2048]
//! ```
//!
//! Java's format strings, reproduced here:
//! header `"%12s %14s %10s %14s\n\n"`, rows `"%12.{sig}f %2.12f %10d %14.2f\n"`,
//! the 100% row without its last column (`1/(1-1)` is infinite; the plotter
//! skips rows that do not have four columns), then the three `#[...]` trailer
//! lines. `{sig}` is the histogram's number of significant value digits.
//!
//! The histogram given must be the MERGED histogram of a run (see the
//! top comment of `report.rs`): a file per connection would be meaningless.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Ticks per half distance to 100%, as Java's and C's default output uses.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Microseconds per output unit: the file is in milliseconds.
const OUTPUT_VALUE_UNIT_SCALING: f64 = 1000.0;

/// Writes `h` (values in microseconds) to `path` in the `.hgrm` format above.
pub fn write_hgrm(path: &Path, h: &Histogram<u64>) -> io::Result<()> {
    std::fs::write(path, hgrm_string(h))
}

/// The `.hgrm` text for `h`; see the module comment.
pub fn hgrm_string(h: &Histogram<u64>) -> String {
    // Precision of the value columns follows the histogram's own precision,
    // exactly as Java does ("%12." + numberOfSignificantValueDigits + "f").
    let prec = usize::from(h.sigfig());
    let scale = OUTPUT_VALUE_UNIT_SCALING;
    let mut out = String::new();

    // `{:>14}` on a 16-character string does not truncate, just as Java's
    // `%14s` does not: that is why the header's last column looks unpadded.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );

    if !h.is_empty() {
        // Java prints getTotalCountToThisValue(): the running count up to and
        // including the bucket. The Rust iterator gives the count since the
        // previous step, so sum it up (repeated picks in one bucket add 0).
        let mut total_to_value: u64 = 0;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total_to_value = total_to_value.saturating_add(v.count_since_last_iteration());
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{:>12.prec$} {:2.12} {:>10} {:>14.2}",
                    value,
                    q,
                    total_to_value,
                    1.0 / (1.0 - q),
                    prec = prec
                );
            } else {
                let _ = writeln!(
                    out,
                    "{:>12.prec$} {:2.12} {:>10}",
                    value,
                    q,
                    total_to_value,
                    prec = prec
                );
            }
        }
    }

    let _ = writeln!(
        out,
        "#[Mean    = {:>12.prec$}, StdDeviation   = {:>12.prec$}]",
        h.mean() / scale,
        h.stdev() / scale,
        prec = prec
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.prec$}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len(),
        prec = prec
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

/// The histogram's sub-bucket count, which the Rust crate does not expose:
/// the smallest power of two >= 2 * 10^sigfig (2048 for 3 digits), computed
/// exactly as both the Java and the Rust constructors do.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10_u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1..=10_000 µs, one sample each: a uniform distribution whose
    /// percentiles are known (p50 ≈ 5 ms, max ≈ 10 ms).
    fn uniform() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000 {
            h.record(v).unwrap();
        }
        h
    }

    struct Row {
        value: f64,
        pct: f64,
        total: u64,
        inv: Option<f64>,
    }

    fn rows(text: &str) -> Vec<Row> {
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert!(f.len() == 4 || f.len() == 3, "bad row {l:?}");
                Row {
                    value: f[0].parse().unwrap(),
                    pct: f[1].parse().unwrap(),
                    total: f[2].parse().unwrap(),
                    inv: f.get(3).map(|s| s.parse().unwrap()),
                }
            })
            .collect()
    }

    #[test]
    fn header_rows_and_trailer_have_the_java_layout() {
        let h = uniform();
        let text = hgrm_string(&h);
        let lines: Vec<&str> = text.lines().collect();
        // Header exactly as Java prints it, then an empty line.
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the minimum at percentile 0, in ms with 3 decimals.
        assert_eq!(
            lines[2],
            "       0.001 0.000000000000          1           1.00"
        );

        let rows = rows(&text);
        assert!(rows.len() > 20, "expected many ticks, got {}", rows.len());
        for w in rows.windows(2) {
            assert!(w[1].value >= w[0].value, "values must not decrease");
            assert!(w[1].pct >= w[0].pct, "percentiles must not decrease");
            assert!(w[1].total >= w[0].total, "counts must not decrease");
        }
        // Every row but the last has 1/(1-p) consistent with its percentile.
        for r in &rows[..rows.len() - 1] {
            let inv = r.inv.expect("4 columns before the 100% row");
            assert!((inv - 1.0 / (1.0 - r.pct)).abs() < 0.01 * inv.max(1.0));
        }
        // The 100% row has three columns, the max and the total count.
        let last = rows.last().unwrap();
        assert_eq!(last.pct, 1.0);
        assert!(last.inv.is_none());
        assert_eq!(last.total, 10_000);
        assert!((last.value - h.max() as f64 / 1000.0).abs() < 1e-9);
        // Ticks include the usual 50% / 90% levels with plausible values.
        let p50 = rows.iter().find(|r| r.pct == 0.5).unwrap();
        assert!((p50.value - 5.0).abs() < 0.01, "p50 {}", p50.value);

        let n = lines.len();
        assert_eq!(
            lines[n - 3],
            format!(
                "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
                h.mean() / 1000.0,
                h.stdev() / 1000.0
            )
        );
        assert!(lines[n - 3].starts_with("#[Mean    =        5.00"));
        assert_eq!(
            lines[n - 2],
            format!(
                "#[Max     = {:>12.3}, Total count    =        10000]",
                h.max() as f64 / 1000.0
            )
        );
        assert_eq!(
            lines[n - 1],
            format!(
                "#[Buckets = {:>12}, SubBuckets     =         2048]",
                h.buckets()
            )
        );
    }

    #[test]
    fn empty_histogram_has_header_and_zero_trailer_only() {
        let h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let text = hgrm_string(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(
            lines[2],
            "#[Mean    =        0.000, StdDeviation   =        0.000]"
        );
        assert_eq!(
            lines[3],
            "#[Max     =        0.000, Total count    =            0]"
        );
    }

    #[test]
    fn precision_follows_significant_digits() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        h.record(1500).unwrap();
        let text = hgrm_string(&h);
        // 2 digits: 1500 µs lands in a bucket 8 µs wide whose highest
        // equivalent value is 1503 µs, printed with 2 decimals as Java does.
        assert_eq!(
            text.lines().nth(2).unwrap(),
            "        1.50 0.000000000000          1           1.00"
        );
        assert!(text.ends_with("SubBuckets     =          256]\n"));
    }

    #[test]
    fn write_hgrm_writes_the_file() {
        let dir = std::env::temp_dir().join(format!("hgrm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.hgrm");
        write_hgrm(&p, &uniform()).unwrap();
        let back = std::fs::read_to_string(&p).unwrap();
        assert_eq!(back, hgrm_string(&uniform()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
