//! Tests of the SQL92 filter as a whole: grammar, compile-time checks, error
//! texts, and evaluation tables mirroring RocketMQ's `ExpressionTest` and
//! `ParserTest` (same facts, own cases).

use std::collections::HashMap;

use proptest::prelude::*;

use super::eval::{eval, Fault, Val};
use super::*;

/// The full result RocketMQ's `evaluate` would give.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Out {
    True,
    False,
    /// Java `null`.
    Null,
    /// Java threw.
    Throws,
}
use Out::*;

fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn compile(expr: &str) -> Sql92Filter {
    Sql92Filter::compile(expr).unwrap_or_else(|e| panic!("{expr:?} rejected: {e}"))
}

fn outcome(expr: &str, pairs: &[(&str, &str)]) -> Out {
    let filter = compile(expr);
    let map = props(pairs);
    let out = match eval(&filter.root, &map) {
        Ok(Some(Val::Bool(true))) => True,
        Ok(Some(Val::Bool(false))) => False,
        Ok(None) => Null,
        Ok(Some(other)) => panic!("{expr:?} evaluated to non-boolean {other:?}"),
        Err(Fault) => Throws,
    };
    // `matches` is exactly "evaluated to TRUE", over maps and raw bytes.
    assert_eq!(filter.matches(&map), out == True, "{expr:?} {pairs:?}");
    let mut raw = Vec::new();
    for (k, v) in pairs {
        rocketcore_storage::properties::push(&mut raw, k, v);
    }
    if pairs.iter().all(|(_, v)| !v.is_empty()) {
        assert_eq!(
            filter.matches(&RawProperties(&raw)),
            out == True,
            "{expr:?} raw"
        );
    }
    out
}

#[track_caller]
fn check(expr: &str, pairs: &[(&str, &str)], want: Out) {
    assert_eq!(outcome(expr, pairs), want, "{expr:?} with {pairs:?}");
}

fn error(expr: &str) -> Sql92Error {
    match Sql92Filter::compile(expr) {
        Ok(f) => panic!("{expr:?} compiled to {:?}", f.root),
        Err(e) => e,
    }
}

#[track_caller]
fn syntax_error(expr: &str, needle: &str) {
    let e = error(expr);
    assert!(matches!(e, Sql92Error::Syntax { .. }), "{expr:?}: {e:?}");
    assert!(e.to_string().contains(needle), "{expr:?}: {e}");
}

#[track_caller]
fn invalid(expr: &str, needle: &str) {
    let e = error(expr);
    assert!(matches!(e, Sql92Error::Invalid { .. }), "{expr:?}: {e:?}");
    assert!(e.to_string().contains(needle), "{expr:?}: {e}");
}

// ---- grammar ------------------------------------------------------------------

#[test]
fn every_construct_parses() {
    for expr in [
        "a = 3 and b <> 4 And c > 5 AND d <= 4",
        "a = 3 or b <> 4 Or c >= 5 OR d < 4",
        "a in ('3', '4', '5')",
        "(a not in ('6', '4', '5')) or (b in ('3'))",
        "(a between 2 and 10) AND (b not between 6 and 9)",
        "a is null",
        "a is not null",
        "a <= now",
        "a=3 and b contains 'xxx' and c not contains 'xxx'",
        "a startswith 'x' or a not startswith 'y' or a endswith 'z' or a not endswith 'w'",
        "TRUE",
        "false",
        "NULL",
        "a",
        "NOT a",
        "NOT (a = 1)",
        "not not (a = 1)",
        "a = TRUE or b = FALSE",
        "a > -5 and b < +5 and c = - - 5",
        "a > 1.5 and b < .5 and c >= 5. and d <= 1e3 and e = 2.5E-3 and f = 1E+2",
        "a = 5L and b = 5l and c = 9223372036854775807",
        "a = 'it''s'",
        "a = ''",
        "_x$1 = 1 and $ = 2 and TAGS = 't'",
        "a = b",
        "((a = 1))",
        "(a) in ('x')",
        "'axb' contains 'x'",
        "5 = 5",
        "(a > 1) = TRUE",
        "a IS NULL IS NULL",
        "a = 1 = TRUE",
        "a between -5 and 5",
        "a between 10 and -5",
        "a not between 10 and 0",
        "-(a = 1) > 5",
        "a\t=\n1\r\x0cand b=2",
        "a = 1 -- trailing comment\n",
        "a = 1 -- trailing comment without line break",
        "/* lead */ a /* mid */ = 1 /* tail */",
        "a = 1 --\r\n and b = 2",
    ] {
        compile(expr);
    }
}

#[test]
fn keywords_ignore_case_and_names_keep_it() {
    for expr in [
        "a IS NOT NULL AND b BETWEEN 1 AND 2 OR c IN ('x') OR d CONTAINS 'y'",
        "a is not null and b between 1 and 2 or c in ('x') or d contains 'y'",
        "a Is NoT nUlL aNd b BeTwEeN 1 AnD 2 oR c iN ('x') Or d CoNtAiNs 'y'",
        "a StartsWith 'x' or a ENDSWITH 'y' or a = True or a = fAlSe or a = nULL_",
    ] {
        compile(expr);
    }
    // Property names are case-sensitive.
    check("Key = 'v'", &[("key", "v")], Null);
    check("Key = 'v'", &[("Key", "v")], True);
    // A longer word is a name, not a keyword.
    check(
        "NOTE = 'v' and ISX = 'w'",
        &[("NOTE", "v"), ("ISX", "w")],
        True,
    );
}

#[test]
fn or_is_looser_than_and() {
    // a OR (b AND c)
    let e = "a = '1' or b = '1' and c = '1'";
    check(e, &[("a", "1"), ("b", "0"), ("c", "0")], True);
    check(e, &[("a", "0"), ("b", "1"), ("c", "0")], False);
    check(
        "(a = '1' or b = '1') and c = '1'",
        &[("a", "1"), ("c", "0")],
        False,
    );
}

#[test]
fn equality_is_looser_than_ordering() {
    // (a > 1) = TRUE, not a > (1 = TRUE)
    check("a > 1 = TRUE", &[("a", "5")], True);
    check("a > 1 = FALSE", &[("a", "5")], False);
    // Ordering operators cannot chain: the left side would be a condition.
    invalid(
        "a > 1 > 0",
        "`>` needs a number or a property, found `a > 1`",
    );
}

#[test]
fn not_binds_to_the_next_operand() {
    // NOT a > 5 is (NOT a) > 5: ordering a condition.
    invalid(
        "NOT a > 5",
        "`>` needs a number or a property, found `NOT a`",
    );
    invalid(
        "NOT a IN ('x')",
        "IN needs a property on its left, found `NOT a`",
    );
    invalid(
        "NOT a BETWEEN 1 AND 2",
        "BETWEEN needs a number or a property",
    );
    // (NOT a) = 'x' compiles but never matches: NOT a is a Boolean, and
    // comparing a Boolean with a string throws.
    check("NOT a = 'x'", &[("a", "x")], Throws);
    check("NOT a = 'x'", &[], Null);
    // (NOT a) IS NULL is true exactly when a is missing.
    check("NOT a IS NULL", &[], True);
    check("NOT a IS NULL", &[("a", "x")], False);
    check("NOT (a > 5)", &[("a", "3")], True);
    check("NOT (a > 5)", &[("a", "7")], False);
}

#[test]
fn literals() {
    check("a = 'it''s'", &[("a", "it's")], True);
    check(
        "TAGS is not null and TAGS='''''tag'''''",
        &[("TAGS", "''tag''")],
        True,
    );
    check("a = ''", &[("b", "x")], Null);
    // Integer literals that fit 32 bits read the property as an int.
    check("a = 2147483647", &[("a", "2147483647")], True);
    check("a = 2147483647", &[("a", "2147483648")], Throws);
    check("a = 2147483648", &[("a", "2147483648")], True);
    check("a = 5L", &[("a", "5")], True);
    check("a = -5", &[("a", "-5")], True);
    check("a = --5", &[("a", "5")], True);
    check("a = +5", &[("a", "5")], True);
    check("a = 1e3", &[("a", "1000")], True);
    check("a = .5", &[("a", "0.5")], True);
    check("a = 5.", &[("a", "5")], True);
    // `--` without a later line break is two minus signs, as in JavaCC.
    check("a > --5", &[("a", "6")], True);
}

#[test]
fn comments() {
    check("a = 1 -- says a is one\n or b = 2", &[("b", "2")], True);
    check("a = 1 /* or b = 2 */", &[("b", "2")], Null);
    check("a = 1 -- or b = 2", &[("b", "2")], Null);
    syntax_error("a = 1 /* open", "unterminated `/*` comment at position 6");
    syntax_error(
        "a > --5\n",
        "expected a literal or property after `>` at position 8",
    );
}

// ---- errors -----------------------------------------------------------------

#[test]
fn error_texts_name_what_and_where() {
    assert_eq!(
        error("a >").to_string(),
        "SQL92 expression `a >`: expected a literal or property after `>` at position 3"
    );
    assert_eq!(
        error("a > )").to_string(),
        "SQL92 expression `a > )`: expected a literal or property after `>`, found `)` at position 4"
    );
    assert_eq!(error("a >").position(), Some(3));
    assert_eq!(
        error("a = 'x' AND b > 'y'").to_string(),
        "SQL92 expression `a = 'x' AND b > 'y'`: `>` needs a number or a property, \
         found `'y'` at position 16"
    );
}

#[test]
fn syntax_errors() {
    syntax_error("", "the expression is empty at position 0");
    syntax_error("  /* nothing */ ", "the expression is empty");
    syntax_error("a = 'x", "unterminated string literal at position 4");
    syntax_error("a # 1", "unexpected character `#` at position 2");
    syntax_error("a != 1", "not-equal is `<>`");
    syntax_error("a = \"x\"", "single quotes");
    syntax_error("a = 1 && b = 2", "`AND`");
    syntax_error("a = 1 || b = 2", "`OR`");
    syntax_error("a = é", "unexpected character `é` at position 4");
    syntax_error("a.b = 1", "unexpected character `.`");
    syntax_error("a = 05", "integer literal `05` has a leading zero");
    syntax_error("a = 0x1F", "invalid number `0x1F`");
    syntax_error("a = 1e", "invalid number `1e`");
    syntax_error("a = 5abc", "invalid number `5abc`");
    syntax_error("a = 0L", "invalid number `0L`");
    syntax_error(
        "a == 1",
        "expected a literal or property after `=`, found `=`",
    );
    syntax_error("a and between 2 and 10", "after `and`, found `between`");
    syntax_error("(a = 1", "unclosed `(` at position 0");
    syntax_error(
        "(a = 1 b",
        "expected `)` for the `(` at position 0, found `b` at position 7",
    );
    syntax_error("a = 1)", "unmatched `)` at position 5");
    syntax_error(
        "a = 1 b = 2",
        "expected AND, OR, an operator or the end, found `b`",
    );
    syntax_error("a = 1 AND", "after `AND` at position 9");
    syntax_error("a IS 5", "expected NULL or NOT NULL after `IS`, found `5`");
    syntax_error("a IS NOT 5", "expected NULL after `NOT`, found `5`");
    syntax_error(
        "a NOT b",
        "expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after `NOT`",
    );
    syntax_error("a IN 'x'", "expected `(` after `IN`, found `'x'`");
    syntax_error("a IN ()", "expected a string literal after `(`, found `)`");
    syntax_error(
        "a IN (1, 2)",
        "expected a string literal after `(`, found `1`",
    );
    syntax_error("a IN ('x' 'y')", "expected `,` or `)`");
    syntax_error("a IN ('x',)", "expected a string literal after `,`");
    syntax_error(
        "value contains x",
        "expected a string literal after `contains`, found `x`",
    );
    syntax_error("value not contains 123", "after `contains`, found `123`");
    syntax_error(
        "'axb' contains ",
        "expected a string literal after `contains` at position 15",
    );
    syntax_error("a BETWEEN 1 OR 2", "expected AND after `1`, found `OR`");
    syntax_error("a = 'x' + 1", "found `+`");
}

#[test]
fn invalid_expressions() {
    invalid("5", "expected a condition, found `5`");
    invalid("'abc'", "expected a condition, found `'abc'`");
    invalid("-a", "expected a condition, found `-a`");
    invalid("a = 1 OR 5", "found `5`");
    invalid("NOT 'x'", "found `'x'`");
    invalid(
        "a > 'abc'",
        "`>` needs a number or a property, found `'abc'`",
    );
    invalid(
        "'abc' < a",
        "`<` needs a number or a property, found `'abc'`",
    );
    invalid("a >= TRUE", "found `TRUE`");
    invalid("a <= NULL", "found `NULL`");
    invalid("(a = 1) < 2", "found `(a = 1)`");
    invalid(
        "a = NULL",
        "`=` cannot compare with NULL; use IS NULL or IS NOT NULL",
    );
    invalid("NULL <> a", "`<>` cannot compare with NULL");
    invalid("TRUE = 1", "`TRUE` cannot be compared with `1`");
    invalid("FALSE <> 'x'", "`FALSE` cannot be compared with `'x'`");
    invalid(
        "'a' in ('x')",
        "IN needs a property on its left, found `'a'`",
    );
    invalid(
        "a between 10 and 0",
        "BETWEEN bounds are reversed: `10` is greater than `0`",
    );
    invalid("a between 2.5 and 2", "reversed");
    invalid(
        "a between 'a' and 'b'",
        "BETWEEN needs a number or a property, found `'a'`",
    );
    invalid("a between NULL and 1", "found `NULL`");
    invalid("'x' between 1 and 2", "found `'x'`");
    invalid(
        "a > 100000000000000000000000",
        "integer literal `100000000000000000000000` is out",
    );
    invalid("a > 9223372036854775808", "out of the 64-bit range");
    invalid("a > 1e309", "greater than 1.7976931348623157E308");
    invalid("a > 0.0", "`0.0` is less than 4.9E-324");
    invalid("a > 1e-400", "less than 4.9E-324");
    // Equal bounds and negative bounds are accepted.
    compile("a between 2 and 2.0");
    compile("a between 5 and 6000000000");
}

#[test]
fn limits() {
    let long = format!("a = '{}'", "x".repeat(MAX_LEN));
    assert_eq!(
        error(&long),
        Sql92Error::TooLong {
            len: MAX_LEN + 6,
            max: MAX_LEN
        }
    );
    assert_eq!(error(&long).position(), None);
    assert_eq!(
        error(&long).to_string(),
        "SQL92 expression is 65542 bytes long; at most 65536 are accepted"
    );
    compile(&format!("a = '{}'", "x".repeat(MAX_LEN - 6)));

    let nested = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
    compile(&nested(MAX_DEPTH - 1));
    let e = error(&nested(MAX_DEPTH + 1));
    assert!(
        matches!(e, Sql92Error::TooDeep { max: MAX_DEPTH, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("nested deeper than 64 levels at position 64"),
        "{e}"
    );
    // A huge nesting is refused early, without exhausting the stack.
    assert!(matches!(error(&nested(30_000)), Sql92Error::TooDeep { .. }));
    assert!(matches!(
        error(&"NOT ".repeat(10_000)),
        Sql92Error::TooDeep { .. }
    ));
    assert!(matches!(
        error(&format!("{}5", "-".repeat(1000))),
        Sql92Error::TooDeep { .. }
    ));
    // Chains built by loops are bounded too.
    let chain = format!("a{}", " IS NULL".repeat(5000));
    assert!(matches!(error(&chain), Sql92Error::TooDeep { .. }));
    let chain = format!("a{}", " contains 'x'".repeat(100));
    assert!(matches!(error(&chain), Sql92Error::TooDeep { .. }));
    // Long AND/OR chains are flat, so they are fine.
    let wide = (0..3000)
        .map(|i| format!("p{i} = '{i}'"))
        .collect::<Vec<_>>();
    let f = compile(&wide.join(" AND "));
    let all = (0..3000)
        .map(|i| (format!("p{i}"), i.to_string()))
        .collect::<HashMap<_, _>>();
    assert!(f.matches(&all));
    compile(&wide.join(" OR "));
    // Long messages quote a shortened expression.
    let e = error(&format!("{} >", "a".repeat(1000)));
    assert!(e.to_string().len() < 400, "{e}");
}

// ---- evaluation: RocketMQ ExpressionTest facts ----------------------------------

#[test]
fn and_or_over_string_properties() {
    let and = "a=3 and b<>4 And c>5 AND d<=4";
    check(and, &[("a", "3"), ("b", "5"), ("c", "6"), ("d", "1")], True);
    check(
        and,
        &[("a", "4"), ("b", "5"), ("c", "6"), ("d", "1")],
        False,
    );
    let or = "a=3 or b<>4 Or c>5 OR d<=4";
    check(or, &[("a", "3")], True);
    check(or, &[("a", "4"), ("b", "5")], True);
    check(or, &[("a", "4"), ("b", "4"), ("c", "6")], True);
    check(or, &[("a", "4"), ("b", "4"), ("c", "3"), ("d", "2")], True);
    check(
        or,
        &[("a", "4"), ("b", "4"), ("c", "3"), ("d", "10")],
        False,
    );
    check(or, &[("a", "4"), ("b", "4")], Null);
}

#[test]
fn in_and_not_in() {
    let e = "a in ('3', '4', '5')";
    for v in ["3", "4", "5"] {
        check(e, &[("a", v)], True);
    }
    check(e, &[("a", "8")], False);
    check(e, &[("a", "3.0")], False);
    check(e, &[], Null);
    let e = "a not in ('3', '4', '5')";
    check(e, &[("a", "8")], True);
    check(e, &[("a", "4")], False);
    check(e, &[], Null);
    // Many items (binary search) and duplicates.
    let many = (0..50)
        .map(|i| format!("'v{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let e = format!("a in ({many}, 'v7')");
    check(&e, &[("a", "v49")], True);
    check(&e, &[("a", "v50")], False);
}

#[test]
fn between_and_not_between() {
    let e = "a between 2 and 10";
    for v in ["2", "3", "10"] {
        check(e, &[("a", v)], True);
    }
    for v in ["1", "11", "-3"] {
        check(e, &[("a", v)], False);
    }
    check(e, &[], Null);
    check(e, &[("a", "abc")], Throws);
    check(e, &[("a", "2.5")], Throws);
    let e = "a not between 2 and 10";
    for v in ["1", "11"] {
        check(e, &[("a", v)], True);
    }
    for v in ["2", "3", "10"] {
        check(e, &[("a", v)], False);
    }
    check(e, &[], Null);
    // Property bounds, compared as doubles when all are strings.
    let e = "a between lo and hi";
    check(e, &[("a", "3.14"), ("lo", "3"), ("hi", "4")], True);
    check(e, &[("a", "3.14"), ("lo", "3")], Null);
    check(e, &[("a", "3.14"), ("lo", "up"), ("hi", "low")], Throws);
    // The first comparison decides before the second bound is looked at.
    check(e, &[("a", "1"), ("lo", "3"), ("hi", "x")], False);
    check(
        "a not between lo and hi",
        &[("a", "1"), ("lo", "3"), ("hi", "x")],
        True,
    );
    check(
        "a not between lo and hi",
        &[("a", "5"), ("lo", "3"), ("hi", "x")],
        Throws,
    );
    // Negative bounds are not order-checked, and reversed ones never match.
    check("a between 10 and -5", &[("a", "0")], False);
    check("a between -5 and 5", &[("a", "-5")], True);
    check(
        "key is not null and key between 0 and 100",
        &[("key", "con")],
        Throws,
    );
}

#[test]
fn is_null_and_is_not_null() {
    check("a is null", &[("abc", "2")], True);
    check("a is null", &[("a", "2")], False);
    check("a is not null", &[("a", "2")], True);
    check("a is not null", &[("abc", "2")], False);
    check("a is not null and a='hello'", &[("a", "hello")], True);
    check("a is not null and a='hello'", &[], False);
    check("a is null OR a='hello'", &[], True);
    check("a is null OR a='hello'", &[("a", "hello")], True);
    check("a is null OR a='hello'", &[("a", "abc")], False);
    check("5 is null", &[], False);
    check("NULL is null", &[], True);
    check("-a is null", &[("a", "5")], True);
}

#[test]
fn booleans() {
    let e = "a=TRUE OR b=FALSE";
    check(e, &[("a", "true"), ("b", "false")], True);
    check(e, &[("a", "false"), ("b", "true")], False);
    check("a = TRUE", &[("a", "TRUE")], True);
    check("a = TRUE", &[("a", "yes")], False);
    // Any string other than "true" is FALSE.
    check("a = FALSE", &[("a", "yes")], True);
    check("a <> TRUE", &[("a", "1")], True);
    // With the literal on the left RocketMQ throws (ClassCastException).
    check("TRUE = a", &[("a", "true")], Throws);
    check("TRUE = a", &[], False);
    check("TRUE", &[], True);
    check("FALSE", &[], False);
    check("NULL", &[], Null);
    check("NOT NULL", &[], Null);
    check("TRUE = FALSE", &[], False);
    check("(a = 'x') = TRUE", &[("a", "x")], True);
    check("(a = 'x') = 1", &[("a", "x")], False);
    check("1 = TRUE", &[], False);
    // A bare property is a condition that is false when present.
    check("a", &[("a", "true")], False);
    check("a", &[], Null);
    check("NOT a", &[("a", "false")], True);
    check("NOT a", &[], Null);
    check("a OR b = '1'", &[("a", "x"), ("b", "1")], True);
}

#[test]
fn string_and_number_conversions() {
    check("a > 5", &[("a", "10")], True);
    check("a > 5", &[("a", "+10")], True);
    check("a > 5", &[("a", "05")], False);
    check("a = 5", &[("a", "05")], True);
    check("a = '5'", &[("a", "05")], False);
    check("a = '5'", &[("a", "5")], True);
    // Integer.valueOf: no decimals, no spaces, 32 bits.
    check("a > 5", &[("a", "5.5")], Throws);
    check("a > 5", &[("a", " 10")], Throws);
    check("a > 5", &[("a", "10000000000")], Throws);
    check("a > 5", &[("a", "abc")], Throws);
    check("a = 5", &[("a", "abc")], Throws);
    check("a <> 5", &[("a", "abc")], Throws);
    // Long.valueOf for 64-bit literals.
    check("a > 5000000000", &[("a", "10000000000")], True);
    check("a > 5000000000", &[("a", "1e11")], Throws);
    // Double.valueOf for float literals: trims, exponents, suffixes, hex.
    check("a > 5.0", &[("a", "5.5")], True);
    check("a > 5.0", &[("a", " 10 ")], True);
    check("a > 3.1E10", &[("a", "3.1415E10")], True);
    check("a > 3.14", &[("a", "3.1415")], True);
    check("a = 1.5", &[("a", "1.5f")], True);
    check("a = 16.0", &[("a", "0x10p0")], True);
    check("a > 1.5", &[("a", "Infinity")], True);
    check("a > 1.5", &[("a", "NaN")], True);
    check("a > 1.5", &[("a", "nan")], Throws);
    // Two properties: doubles under ordering, text under equality.
    check("a > b", &[("a", "10"), ("b", "20")], False);
    check("a > b", &[("a", "20"), ("b", "10")], True);
    check("a >= b", &[("a", "1e3"), ("b", "999")], True);
    check("a > b", &[("a", "x"), ("b", "y")], Throws);
    check("a=b", &[("a", "3.14"), ("b", "3.14")], True);
    check("a<>b", &[("a", "3.14"), ("b", "3.14")], False);
    check("a<>b", &[("a", "3.14"), ("b", "3.141")], True);
    check("a=b", &[("a", "1"), ("b", "1.0")], False);
    // Literals among themselves.
    check("5 = 5.0", &[], True);
    check("5 = 5000000000", &[], False);
    check("5000000000 > 5", &[], True);
    check("'5' = 5", &[], True);
    check("'x' = 5", &[], Throws);
    // Negation applies to numbers only; anything else becomes null.
    check("-a > 5", &[("a", "-10")], Null);
    check("a > -5", &[("a", "-3")], True);
    check("a > -(5.5)", &[("a", "-5")], True);
    check("a = -(b = 'x')", &[("a", "1"), ("b", "x")], False);
}

#[test]
fn failures_poison_the_whole_expression() {
    // RocketMQ's broker treats an exception anywhere as "no match" ...
    check("a > 5 OR b = 'x'", &[("a", "abc"), ("b", "x")], Throws);
    check("NOT (a > 5)", &[("a", "abc")], Throws);
    // ... but short-circuiting can skip the throwing side.
    check("b = 'x' OR a > 5", &[("a", "abc"), ("b", "x")], True);
    check("b = 'y' AND a > 5", &[("a", "abc"), ("b", "x")], False);
    check("b = 'x' AND a > 5", &[("a", "abc"), ("b", "x")], Throws);
}

#[test]
fn three_valued_logic() {
    check("a = 'x'", &[], Null);
    check("NOT (a = 'x')", &[], Null);
    check("a <> 'x'", &[], Null);
    check("a > 1 AND b = '1'", &[("b", "1")], Null);
    check("a > 1 AND b = '1'", &[("b", "2")], False);
    check("a > 1 OR b = '1'", &[("b", "1")], True);
    check("a > 1 OR b = '1'", &[("b", "2")], Null);
    check(
        "a > 1 OR b = '1' OR c = '1'",
        &[("b", "2"), ("c", "1")],
        True,
    );
    check(
        "a > 1 AND b = '1' AND c = '1'",
        &[("b", "1"), ("c", "2")],
        False,
    );
    // Equality's null handling is asymmetric in RocketMQ.
    check("'x' = a", &[], False);
    check("'x' <> a", &[], True);
    check("a = b", &[], True);
    check("a <> b", &[], False);
    check("a = b", &[("b", "1")], Null);
    check("a = b", &[("a", "1")], False);
    check("a > b", &[("a", "1")], Null);
    check("a > b", &[("b", "1")], Null);
}

#[test]
fn contains_startswith_endswith() {
    let axb = [("value", "axb")];
    check("value contains 'x'", &axb, True);
    check("value startswith 'ax'", &axb, True);
    check("value endswith 'xb'", &axb, True);
    check("value not contains 'x'", &axb, False);
    check("value not startswith 'ax'", &axb, False);
    check("value not endswith 'xb'", &axb, False);
    let abb = [("value", "abb")];
    for op in ["contains", "startswith", "endswith"] {
        check(&format!("value {op} 'x'"), &abb, False);
        check(&format!("value not {op} 'x'"), &abb, True);
        // Empty search strings and missing values are false, NOT forms too.
        check(&format!("value {op} ''"), &axb, False);
        check(&format!("value not {op} ''"), &axb, False);
        check(&format!("value {op} 'x'"), &[], False);
        check(&format!("value not {op} 'x'"), &[], False);
        check(&format!("NOT (value {op} 'x')"), &[], True);
        // Non-strings are false.
        check(&format!("1.23 {op} 'x'"), &[], False);
        check(&format!("1.23 not {op} 'x'"), &[], False);
        check(&format!("TRUE not {op} 'x'"), &[], False);
        check(&format!("(value = 'axb') not {op} 'x'"), &axb, False);
        // Literals on the left work like values.
        check(&format!("' ' {op} ' '"), &[], True);
        check(&format!("' ' not {op} ' '"), &[], False);
        check(&format!("'axb' {op} '.'"), &[], False);
        check(&format!("'axb' not {op} '.'"), &[], True);
        check(&format!("'s' {op} '\\'"), &[], False);
        // An empty search string short-cuts before a throwing operand.
        check(&format!("(value > 1) {op} ''"), &axb, False);
    }
    check("'axb' contains 'x'", &[], True);
    check("'axb' startswith 'u'", &[], False);
    check("'axb' not endswith 'u'", &[], True);
    check("value contains 'é'", &[("value", "café")], True);
    check("value contains 'x' contains 'y'", &axb, False);
}

#[test]
fn all_in_one() {
    for tail in [
        "c not contains 'axbc'",
        "c not startswith 'axbc'",
        "c not endswith 'axbc'",
    ] {
        let e = format!("a not in ('4', '4', '5') and b between 3 and 10 and {tail}");
        check(&e, &[("a", "3"), ("b", "3"), ("c", "axbdc")], True);
    }
}

#[test]
fn raw_properties_drive_matches() {
    let f = compile("a > 5 AND TAGS = 'x'");
    assert!(f.matches(&RawProperties(b"a\x0110\x02TAGS\x01x\x02")));
    assert!(f.matches(&RawProperties(b"TAGS\x01x\x02a\x0110")));
    assert!(!f.matches(&RawProperties(b"a\x0110\x02")));
    assert!(!f.matches(&RawProperties(b"")));
    assert!(!f.matches(&RawProperties(b"\xff\x02\x01\x01\x02")));
    // Invalid UTF-8 values are missing: IS NULL holds.
    let f = compile("a IS NULL");
    assert!(f.matches(&RawProperties(b"a\x01\xc3\x28\x02")));
    assert!(f.matches(&RawProperties(b"a\x01\x02")));
    assert!(!f.matches(&RawProperties(b"a\x01v")));
}

#[test]
fn source_and_clone() {
    let f = compile(" a = 1 ");
    assert_eq!(f.source(), " a = 1 ");
    let g = f.clone();
    assert!(g.matches(&props(&[("a", "1")])));
}

// ---- robustness ---------------------------------------------------------------------

fn grammar_soup() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a",
        "b",
        "TAGS",
        "1",
        "5L",
        "2147483648",
        "1.5",
        ".5",
        "1e3",
        "0.0",
        "'x'",
        "''''",
        "'",
        "TRUE",
        "FALSE",
        "NULL",
        "NOT",
        "AND",
        "OR",
        "IS",
        "IN",
        "BETWEEN",
        "CONTAINS",
        "STARTSWITH",
        "ENDSWITH",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "(",
        ")",
        ",",
        "+",
        "-",
        "--",
        "/*",
        "*/",
        "\n",
        "é",
        "#",
        "05",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.join(" "))
}

fn raw_soup() -> impl Strategy<Value = Vec<u8>> {
    let bytes = prop::sample::select(vec![
        b'a', b'b', b'T', b'1', b'5', b'.', b'x', b'e', b'-', 0x01, 0x02, 0xc3, 0xa9, 0xff,
    ]);
    prop::collection::vec(bytes, 0..40)
}

proptest! {
    #[test]
    fn compile_never_panics(expr in any::<String>()) {
        let _ = Sql92Filter::compile(&expr);
    }

    #[test]
    fn compile_never_panics_on_near_grammar(expr in grammar_soup()) {
        if let Ok(f) = Sql92Filter::compile(&expr) {
            let _ = f.matches(&props(&[("a", "1"), ("b", "x"), ("TAGS", "1.5")]));
        }
    }

    #[test]
    fn matches_never_panics(raw in prop::collection::vec(any::<u8>(), 0..64), soup in raw_soup()) {
        for expr in [
            "a > 5 OR b = 'x'",
            "a between 1 and 1.5 and TAGS in ('x', 'y')",
            "a contains 'x' or b not endswith 'y' or a = b or a >= b",
            "a is null and -b < 5000000000 or NOT a",
        ] {
            let f = compile(expr);
            let _ = f.matches(&RawProperties(&raw));
            let _ = f.matches(&RawProperties(&soup));
        }
    }

    #[test]
    fn raw_and_map_agree(pairs in prop::collection::vec(("[ab]", "[0-9a-z.]{1,4}"), 0..5)) {
        let f = compile("a > 5 OR b = 'x' OR (a IS NULL AND b IS NOT NULL)");
        let mut raw = Vec::new();
        let mut map = HashMap::new();
        for (k, v) in &pairs {
            rocketcore_storage::properties::push(&mut raw, k, v);
            map.insert(k.clone(), v.clone());
        }
        prop_assert_eq!(f.matches(&RawProperties(&raw)), f.matches(&map));
    }
}
