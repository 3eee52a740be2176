//! The Java library conversions RocketMQ's comparisons lean on, reproduced
//! over `&str` without allocating: message properties are strings, and
//! whether `a > 5` matches depends on exactly which strings
//! `Integer.valueOf`, `Long.valueOf` and `Double.valueOf` accept.

use std::cmp::Ordering;

/// `Integer.valueOf(String)`. Rust's parser has the same grammar for ASCII
/// input: optional `+`/`-`, decimal digits, no whitespace, overflow fails.
/// Java also accepts non-ASCII Unicode decimal digits; those fail here.
pub(super) fn parse_int(s: &str) -> Option<i32> {
    s.parse().ok()
}

/// `Long.valueOf(String)`; see [`parse_int`].
pub(super) fn parse_long(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// `Boolean.valueOf(String)`: only "true", in any case, is true.
pub(super) fn parse_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// `Double.compare`: a total order in which every NaN equals every other NaN
/// and sorts above +∞, and -0.0 sorts below 0.0.
pub(super) fn compare_double(a: f64, b: f64) -> Ordering {
    if a < b {
        return Ordering::Less;
    }
    if a > b {
        return Ordering::Greater;
    }
    // Java compares doubleToLongBits, which maps every NaN to one pattern.
    let bits = |x: f64| {
        if x.is_nan() {
            0x7ff8_0000_0000_0000_i64
        } else {
            x.to_bits() as i64
        }
    };
    bits(a).cmp(&bits(b))
}

/// `Double.valueOf(String)`: surrounding characters up to U+0020 are
/// trimmed; then an optional sign and `NaN`, `Infinity`, a decimal number
/// (`1`, `1.`, `.5`, `1e-3`) or a hexadecimal one (`0x1.8p3`), optionally
/// followed by one of `fFdD`.
pub(super) fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, unsigned) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let sign = |x: f64| if negative { -x } else { x };
    match unsigned {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(sign(f64::INFINITY)),
        _ => {}
    }
    let u = unsigned.as_bytes();
    if u.len() >= 2 && u[0] == b'0' && (u[1] == b'x' || u[1] == b'X') {
        return parse_hex_double(&unsigned[2..]).map(sign);
    }
    let body = match u.last()? {
        b'f' | b'F' | b'd' | b'D' => &t[..t.len() - 1],
        _ => t,
    };
    // Rust's float parser also accepts "inf", "nan" and friends, so the Java
    // grammar is checked first and Rust only does the correctly rounded
    // conversion, which Java's FloatingDecimal also guarantees.
    if !is_java_decimal(&unsigned[..unsigned.len() - (t.len() - body.len())]) {
        return None;
    }
    body.parse().ok()
}

/// Digits with at most one `.` and at least one digit, then an optional
/// exponent with at least one digit.
fn is_java_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// The part of a Java hexadecimal floating-point string after `0x`:
/// `hex[.hex]p[+-]dec[fFdD]`, where one side of the point may be empty but
/// not both, and the binary exponent is mandatory. Rounds to nearest, ties
/// to even, like Java.
fn parse_hex_double(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    // Up to 15 significant hex digits (60 bits) are kept exactly; any
    // further non-zero digit only matters as a "sticky" bit for rounding.
    let mut mantissa: u64 = 0;
    let mut sticky = false;
    let mut kept = 0u32;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if mantissa == 0 && d == 0 {
            // Leading zeros carry no precision, only position.
        } else if kept < 15 {
            mantissa = mantissa << 4 | u64::from(d);
            kept += 1;
        } else {
            sticky |= d != 0;
            exponent += 4;
        }
        if seen_point {
            exponent -= 4;
        }
        i += 1;
    }
    if digits == 0 || i >= b.len() || (b[i] != b'p' && b[i] != b'P') {
        return None;
    }
    i += 1;
    let mut exp_negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        exp_negative = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut written: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        // Saturate: anything beyond ±2^31 is far outside f64's range anyway.
        written = (written * 10 + i64::from(b[i] - b'0')).min(1 << 31);
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < b.len() && matches!(b[i], b'f' | b'F' | b'd' | b'D') {
        i += 1;
    }
    if i != b.len() {
        return None;
    }
    exponent += if exp_negative { -written } else { written };
    Some(round_binary(mantissa, sticky, exponent))
}

/// The f64 nearest to `(mantissa + ε) · 2^exponent`, where ε is a positive
/// amount below one unit when `sticky` is set.
fn round_binary(mantissa: u64, sticky: bool, exponent: i64) -> f64 {
    if mantissa == 0 {
        return 0.0;
    }
    let bits = i64::from(64 - mantissa.leading_zeros());
    let top = exponent + bits - 1;
    if top > 1023 {
        return f64::INFINITY;
    }
    // Weight of the last bit the result can hold: 52 bits below the top
    // one, but never below the smallest subnormal.
    let unit = (top - 52).max(-1074);
    let shift = unit - exponent;
    let kept = if shift <= 0 {
        // The mantissa has at most 53 bits here, so nothing is dropped
        // (and sticky is never set with so few digits).
        mantissa << -shift
    } else if shift > 64 {
        // Below half the smallest subnormal.
        0
    } else {
        let wide = u128::from(mantissa);
        let kept = wide >> shift;
        let dropped = wide & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let round_up = dropped > half || (dropped == half && (sticky || kept & 1 == 1));
        (kept + u128::from(round_up)) as u64
    };
    scale(kept as f64, unit)
}

/// `x · 2^k`, exact whenever the result is representable.
fn scale(mut x: f64, mut k: i64) -> f64 {
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    x * pow2(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_java_parse_int() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("+42"), Some(42));
        assert_eq!(parse_int("-042"), Some(-42));
        assert_eq!(parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(parse_int("2147483648"), None);
        assert_eq!(parse_long("2147483648"), Some(2_147_483_648));
        assert_eq!(parse_long("9223372036854775808"), None);
        for bad in ["", "+", "-", " 1", "1 ", "1.0", "1e3", "0x10", "abc"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn booleans_follow_java_boolean_value_of() {
        assert!(parse_boolean("true"));
        assert!(parse_boolean("TrUe"));
        assert!(!parse_boolean("yes"));
        assert!(!parse_boolean(" true"));
        assert!(!parse_boolean("1"));
    }

    #[test]
    fn doubles_follow_java_double_value_of() {
        let ok = [
            ("1", 1.0),
            ("  -1.5\t", -1.5),
            ("\u{1}2\u{1f}", 2.0),
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-1", 0.25),
            ("1.5f", 1.5),
            ("1.5D", 1.5),
            ("00012", 12.0),
            ("3.1415E10", 3.1415e10),
            ("1e400", f64::INFINITY),
            ("-1e400", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0x10p0", 16.0),
            ("0X1.8P1", 3.0),
            ("0x.8p1", 1.0),
            ("-0x1p-2d", -0.25),
            ("0x1p-1074", f64::from_bits(1)),
            ("0x1p-1075", 0.0),
            ("0x1.8p-1075", f64::from_bits(1)),
            ("0x3p-1075", f64::from_bits(2)),
            ("0x1p1023", f64::from_bits(0x7fe0_0000_0000_0000)),
            ("0x1p1024", f64::INFINITY),
            ("0x1.fffffffffffff8p0", 2.0),
            ("0x1.fffffffffffff7ffffp0", 2.0 - f64::EPSILON),
            ("0x1.00000000000008p0", 1.0),
            ("0x1.000000000000080001p0", 1.0 + f64::EPSILON),
            ("0x0000000000000000000001p0", 1.0),
        ];
        for (s, want) in ok {
            let got = parse_double(s).unwrap_or_else(|| panic!("{s:?} rejected"));
            assert_eq!(got.to_bits(), want.to_bits(), "{s:?}: {got} != {want}");
        }
        assert!(parse_double("NaN").unwrap().is_nan());
        assert!(parse_double("-NaN").unwrap().is_nan());
        for bad in [
            "",
            " ",
            ".",
            "-",
            "e3",
            ".e3",
            "1e",
            "1e+",
            "1.5ff",
            "inf",
            "nan",
            "infinity",
            "Infinityx",
            "NAN",
            "1_0",
            "0x10",
            "0xp1",
            "0x1.p",
            "1,5",
            "1.2.3",
            "１",
        ] {
            assert_eq!(parse_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn double_compare_is_javas_total_order() {
        assert_eq!(compare_double(1.0, 2.0), Ordering::Less);
        assert_eq!(compare_double(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(compare_double(f64::NAN, -f64::NAN), Ordering::Equal);
        assert_eq!(compare_double(-0.0, 0.0), Ordering::Less);
        assert_eq!(compare_double(0.0, 0.0), Ordering::Equal);
    }
}
