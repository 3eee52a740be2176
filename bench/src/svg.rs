//! Standalone SVG latency-by-percentile chart.
//!
//! It draws what the HdrHistogram plotter draws from `.hgrm` files, with no
//! JavaScript, no external fonts and no network: y is latency in ms on a log
//! scale, x is the percentile on the usual "1/(1-p)" log axis (0%, 90%, 99%,
//! 99.9%, ... one decade per "nine"), one coloured polyline per series. Log
//! scales on both axes keep p50 and the tail readable on one chart, so two
//! runs drawn together can be compared at the tail at a glance.
//!
//! Every series must be a MERGED histogram (see `report.rs`). Values are
//! microseconds. Empty histograms and zero values are allowed: zeros sit on
//! the bottom edge, empty series appear in the legend as "no samples", and
//! every coordinate is checked to be finite, so the file never holds NaN/inf.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 560.0;
// Plot area; the legend sits to the right of it so it never hides a tail.
const LEFT: f64 = 80.0;
const RIGHT: f64 = 700.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 490.0;
const LEGEND_X: f64 = 716.0;

/// The x axis always reaches 99.999% (5 decades); it grows to 99.9999% and
/// 99.99999% when a series has enough samples to resolve them.
const MIN_DECADES: u32 = 5;
const MAX_DECADES: u32 = 7;

/// The Tableau-10 palette, ordered so the first two series (run A, run B)
/// are blue and red: the pair the eye tells apart most easily.
const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

/// Writes the chart for `series` (name, merged histogram of µs) to `path`.
pub fn write_svg(path: &Path, title: &str, series: &[(&str, &Histogram<u64>)]) -> io::Result<()> {
    std::fs::write(path, svg_string(title, series))
}

/// One point of a series: x in decades of 1/(1-p), y in µs.
struct Pt {
    decades: f64,
    us: u64,
}

/// Percentile points of `h`, the same ticks an `.hgrm` file holds (5 per
/// half distance), with p = 100% put at the right edge of the axis.
fn points(h: &Histogram<u64>, x_max: f64) -> Vec<Pt> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let decades = if q >= 1.0 {
                x_max
            } else {
                (1.0 / (1.0 - q)).log10().clamp(0.0, x_max)
            };
            Pt {
                decades,
                us: v.value_iterated_to(),
            }
        })
        .collect()
}

/// Number of x decades: enough for the largest series' resolution.
fn decades_for(series: &[(&str, &Histogram<u64>)]) -> u32 {
    let max_count = series.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    let needed = if max_count > 1 {
        (max_count as f64).log10().ceil() as u32
    } else {
        0
    };
    needed.clamp(MIN_DECADES, MAX_DECADES)
}

/// Axis label for `d` decades: 0%, 90%, 99%, 99.9%, ...
fn pct_label(d: u32) -> String {
    if d == 0 {
        return "0%".to_string();
    }
    let pct = 100.0 - 100.0 / 10f64.powi(d as i32);
    format!("{:.*}%", d.saturating_sub(2) as usize, pct)
}

/// Latency label for 10^exp ms: "0.001", "0.1", "1", "1000".
fn ms_label(exp: i32) -> String {
    if exp < 0 {
        format!("{:.*}", (-exp) as usize, 10f64.powi(exp))
    } else {
        format!("{:.0}", 10f64.powi(exp))
    }
}

/// Short latency text for the legend, from µs.
fn short_latency(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else {
        let ms = us as f64 / 1000.0;
        if ms < 9.995 {
            format!("{ms:.2}ms")
        } else if ms < 99.95 {
            format!("{ms:.1}ms")
        } else if ms < 999.5 {
            format!("{ms:.0}ms")
        } else {
            format!("{:.2}s", ms / 1000.0)
        }
    }
}

/// Escapes text for SVG content and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Formats a coordinate; a non-finite value (which the maths below should
/// never produce) becomes 0 rather than poisoning the file.
fn c(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_string()
    }
}

/// The SVG document for `series`; see the module comment.
pub fn svg_string(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let n_dec = decades_for(series);
    let x_max = f64::from(n_dec);
    let all: Vec<Vec<Pt>> = series.iter().map(|(_, h)| points(h, x_max)).collect();

    // Y range in whole decades of ms around the smallest non-zero and the
    // largest value; zeros are drawn on the bottom edge.
    let min_us = all.iter().flatten().map(|p| p.us).filter(|&v| v > 0).min();
    let max_us = all.iter().flatten().map(|p| p.us).max().unwrap_or(0);
    let (y_lo, y_hi) = match min_us {
        Some(lo) => {
            let lo = ((lo as f64 / 1000.0).log10().floor() as i32).clamp(-3, 9);
            let hi = ((max_us as f64 / 1000.0).log10().ceil() as i32).clamp(-3, 9);
            (lo, hi.max(lo + 1))
        }
        // Nothing to show (or only zeros): a neutral 0.1 ms .. 10 ms frame.
        None => (-1, 1),
    };

    let px = |decades: f64| LEFT + (RIGHT - LEFT) * decades / x_max;
    let py = |us: u64| {
        let l = if us == 0 {
            f64::from(y_lo)
        } else {
            ((us as f64 / 1000.0).log10()).clamp(f64::from(y_lo), f64::from(y_hi))
        };
        BOTTOM - (BOTTOM - TOP) * (l - f64::from(y_lo)) / f64::from(y_hi - y_lo)
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = WIDTH,
        h = HEIGHT
    );
    let _ = writeln!(s, "<title>{}</title>", xml_escape(title));
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        // Anchored at the left edge: a long title centred over the plot
        // would run off the canvas.
        r#"<text x="20" y="30" font-size="16" font-weight="bold" text-anchor="start">{}</text>"#,
        xml_escape(title)
    );

    // Grid and y labels: a solid line per decade, faint lines at 2x and 5x.
    let _ = writeln!(s, r##"<g stroke="#dddddd" stroke-width="1">"##);
    for e in y_lo..y_hi {
        for m in [2.0_f64, 5.0] {
            let y = py(((10f64.powi(e) * m) * 1000.0).round() as u64);
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}" stroke-dasharray="2,3"/>"#,
                y = c(y)
            );
        }
    }
    // 50% and 75% inside the first decade: the body of the distribution.
    for frac in [2.0_f64, 4.0] {
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{BOTTOM}" stroke-dasharray="2,3"/>"#,
            x = c(px(frac.log10()))
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r##"<g stroke="#bbbbbb" stroke-width="1">"##);
    for e in y_lo..=y_hi {
        let y = py((10f64.powi(e) * 1000.0).round() as u64);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}"/>"#,
            y = c(y)
        );
    }
    for d in 0..=n_dec {
        let x = px(f64::from(d));
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{BOTTOM}"/>"#,
            x = c(x)
        );
    }
    let _ = writeln!(s, "</g>");

    // Tick labels.
    let _ = writeln!(s, r##"<g fill="#333333">"##);
    for e in y_lo..=y_hi {
        let y = py((10f64.powi(e) * 1000.0).round() as u64);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            c(LEFT - 6.0),
            c(y + 4.0),
            ms_label(e)
        );
    }
    for d in 0..=n_dec {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            c(px(f64::from(d))),
            c(BOTTOM + 18.0),
            pct_label(d)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="10">50%</text>"#,
        c(px(2f64.log10())),
        c(BOTTOM + 18.0)
    );
    let _ = writeln!(s, "</g>");

    // Axis titles and frame.
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">percentile</text>"#,
        c((LEFT + RIGHT) / 2.0),
        c(BOTTOM + 42.0)
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{y}" text-anchor="middle" font-size="13" transform="rotate(-90 22 {y})">latency (ms, log scale)</text>"#,
        y = c((TOP + BOTTOM) / 2.0)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#666666"/>"##,
        c(RIGHT - LEFT),
        c(BOTTOM - TOP)
    );

    // Series.
    for (i, pts) in all.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let colour = COLOURS[i % COLOURS.len()];
        // Past ten series the colours repeat; dashes keep them apart.
        let dash = if i >= COLOURS.len() {
            r#" stroke-dasharray="6,3""#
        } else {
            ""
        };
        let mut coords = String::new();
        let mut last = String::new();
        for p in pts {
            let xy = format!("{},{}", c(px(p.decades)), c(py(p.us)));
            // Repeated ticks inside one bucket give identical points.
            if xy != last {
                coords.push_str(&xy);
                coords.push(' ');
                last = xy;
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            coords.trim_end()
        );
        // A dot on the maximum, where the eye looks first.
        if let Some(p) = pts.last() {
            let _ = writeln!(
                s,
                r#"<circle cx="{}" cy="{}" r="3.5" fill="{colour}"/>"#,
                c(px(p.decades)),
                c(py(p.us))
            );
        }
    }
    if all.iter().all(|p| p.is_empty()) {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="16" fill="#999999">no samples</text>"##,
            c((LEFT + RIGHT) / 2.0),
            c((TOP + BOTTOM) / 2.0)
        );
    }

    // Legend: name, then count, p50, p99 and max so the numbers are at hand.
    let mut y = TOP + 8.0;
    for (i, (name, h)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let dash = if i >= COLOURS.len() {
            r#" stroke-dasharray="6,3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="3"{dash}/>"#,
            c(LEGEND_X),
            c(y),
            c(LEGEND_X + 24.0),
            c(y)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            c(LEGEND_X + 30.0),
            c(y + 4.0),
            xml_escape(name)
        );
        // Two short lines rather than one long one: the legend column is
        // narrow and SVG text does not wrap.
        let detail = if h.is_empty() {
            vec!["no samples".to_string()]
        } else {
            vec![
                format!(
                    "n={} p50={}",
                    h.len(),
                    short_latency(h.value_at_quantile(0.5))
                ),
                format!(
                    "p99={} p99.9={} max={}",
                    short_latency(h.value_at_quantile(0.99)),
                    short_latency(h.value_at_quantile(0.999)),
                    short_latency(h.max())
                ),
            ]
        };
        for (k, line) in detail.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" font-size="11" fill="#444444">{}</text>"##,
                c(LEGEND_X + 30.0),
                c(y + 19.0 + 14.0 * k as f64),
                xml_escape(line)
            );
        }
        y += 56.0;
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    /// Tag balance and basic XML well-formedness, without an XML crate:
    /// every element opened is closed in order, and no raw '&' or '<' is left
    /// in text.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg "), "must start with <svg");
        assert!(svg.trim_end().ends_with("</svg>"), "must close </svg>");
        for bad in ["NaN", "nan", "inf", "Infinity"] {
            assert!(!svg.contains(bad), "found {bad} in SVG");
        }
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray '>' in {text:?}");
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| ent.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap().to_string();
                stack.push(name);
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed elements {stack:?}");
    }

    #[test]
    fn two_series_chart_is_well_formed_with_axis_labels() {
        let a = hist(1..=10_000);
        let b = hist((1..=10_000).map(|v| v * 2));
        let svg = svg_string("produce <A & B>", &[("run A", &a), ("run B", &b)]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        for label in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"] {
            assert!(svg.contains(&format!(">{label}</text>")), "label {label}");
        }
        assert!(svg.contains("produce &lt;A &amp; B&gt;"));
        assert!(svg.contains("latency (ms"));
        assert!(svg.contains(">run A<") && svg.contains(">run B<"));
        assert!(svg.contains(COLOURS[0]) && svg.contains(COLOURS[1]));
    }

    #[test]
    fn empty_and_zero_histograms_give_no_nan() {
        let empty = hist([]);
        let zeros = hist([0, 0, 0]);
        let svg = svg_string("empty", &[("empty", &empty)]);
        assert_well_formed(&svg);
        assert!(svg.contains("no samples"));
        assert!(!svg.contains("<polyline"));

        let svg = svg_string("zeros", &[("zeros", &zeros), ("empty", &empty)]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 1);

        let svg = svg_string("none", &[]);
        assert_well_formed(&svg);
    }

    #[test]
    fn single_value_and_huge_values_stay_finite() {
        let one = hist([7]);
        let big = hist([59_000_000, 1]);
        let svg = svg_string("t", &[("one", &one), ("big", &big)]);
        assert_well_formed(&svg);
    }

    #[test]
    fn axis_grows_with_sample_count() {
        assert_eq!(decades_for(&[]), 5);
        let h = hist(1..=2_000_000);
        assert_eq!(decades_for(&[("x", &h)]), 7);
        assert_eq!(pct_label(0), "0%");
        assert_eq!(pct_label(1), "90%");
        assert_eq!(pct_label(2), "99%");
        assert_eq!(pct_label(3), "99.9%");
        assert_eq!(pct_label(5), "99.999%");
        assert_eq!(ms_label(-3), "0.001");
        assert_eq!(ms_label(0), "1");
        assert_eq!(ms_label(2), "100");
    }
}
