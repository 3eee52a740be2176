//! Evaluation of a compiled expression against one message's properties,
//! with RocketMQ's value model: Java `String`, `Integer`, `Long`, `Double`
//! and `Boolean` objects, `null` for "unknown", and exceptions.
//!
//! Exceptions matter: RocketMQ's broker catches whatever evaluation throws
//! (`ExpressionMessageFilter.isMatchedByCommitLog`) and treats the message as
//! not matching, so a failed conversion anywhere aborts the whole expression,
//! even under an OR whose other side would be true. [`Fault`] is that
//! exception. Nothing here allocates.

use std::cmp::Ordering;

use super::java::{compare_double, parse_boolean, parse_double, parse_int, parse_long};
use super::parser::{CmpOp, Node};
use crate::filter::Properties;

/// A non-null Java value. Properties are always strings.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Str(&'a str),
    Int(i32),
    Long(i64),
    Double(f64),
    Bool(bool),
}

/// Java threw during evaluation; the message does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fault;

/// `Ok(None)` is Java `null`.
pub(super) type Eval<'a> = Result<Option<Val<'a>>, Fault>;

pub(super) fn matches<P: Properties + ?Sized>(root: &Node, props: &P) -> bool {
    matches!(eval(root, props), Ok(Some(Val::Bool(true))))
}

/// The `Comparable` ordering RocketMQ's `ComparisonExpression.__compare`
/// computes with string conversion on: values of different types are
/// converted towards the other side (a string towards the number or boolean
/// it is compared with, an integer towards long or double), conversion
/// failures throw, and pairs it cannot relate compare as "less".
fn java_compare(left: Val<'_>, right: Val<'_>) -> Result<Ordering, Fault> {
    use Val::*;
    let double = |a: f64, b: f64| Ok(compare_double(a, b));
    match (left, right) {
        (Str(a), Str(b)) => Ok(if a == b {
            Ordering::Equal
        } else {
            a.encode_utf16().cmp(b.encode_utf16())
        }),
        (Int(a), Int(b)) => Ok(a.cmp(&b)),
        (Long(a), Long(b)) => Ok(a.cmp(&b)),
        (Double(a), Double(b)) => double(a, b),
        (Bool(a), Bool(b)) => Ok(a.cmp(&b)),

        (Int(a), Long(b)) => Ok(i64::from(a).cmp(&b)),
        (Long(a), Int(b)) => Ok(a.cmp(&i64::from(b))),
        (Int(a), Double(b)) => double(f64::from(a), b),
        (Double(a), Int(b)) => double(a, f64::from(b)),
        (Long(a), Double(b)) => double(a as f64, b),
        (Double(a), Long(b)) => double(a, b as f64),

        (Int(a), Str(b)) => Ok(a.cmp(&parse_int(b).ok_or(Fault)?)),
        (Str(a), Int(b)) => Ok(parse_int(a).ok_or(Fault)?.cmp(&b)),
        (Long(a), Str(b)) => Ok(a.cmp(&parse_long(b).ok_or(Fault)?)),
        (Str(a), Long(b)) => Ok(parse_long(a).ok_or(Fault)?.cmp(&b)),
        (Double(a), Str(b)) => double(a, parse_double(b).ok_or(Fault)?),
        (Str(a), Double(b)) => double(parse_double(a).ok_or(Fault)?, b),
        (Str(a), Bool(b)) => Ok(parse_boolean(a).cmp(&b)),
        // RocketMQ casts the Boolean itself to String here: ClassCastException.
        (Bool(_), Str(_)) => Err(Fault),
        (Bool(_), _) | (_, Bool(_)) => Ok(Ordering::Less),
    }
}

/// `<`, `<=`, `>`, `>=`: two strings are compared as doubles, and throw
/// unless both parse; otherwise as [`java_compare`].
fn ordered_compare(left: Val<'_>, right: Val<'_>) -> Result<Ordering, Fault> {
    match (left, right) {
        (Val::Str(a), Val::Str(b)) => {
            let a = parse_double(a).ok_or(Fault)?;
            let b = parse_double(b).ok_or(Fault)?;
            Ok(compare_double(a, b))
        }
        _ => java_compare(left, right),
    }
}

/// The ordering of two literals, for the BETWEEN bounds check.
pub(super) fn compare_constants(left: &Node, right: &Node) -> Option<Ordering> {
    struct NoProperties;
    impl Properties for NoProperties {
        fn get(&self, _: &str) -> Option<&str> {
            None
        }
    }
    let left = eval(left, &NoProperties).ok()??;
    let right = eval(right, &NoProperties).ok()??;
    java_compare(left, right).ok()
}

fn boolean(value: Option<Val<'_>>) -> Result<Option<bool>, Fault> {
    match value {
        None => Ok(None),
        Some(Val::Bool(b)) => Ok(Some(b)),
        // A `(Boolean)` cast of anything else throws.
        Some(_) => Err(Fault),
    }
}

fn bool_val<'a>(b: Option<bool>) -> Eval<'a> {
    Ok(b.map(Val::Bool))
}

/// One ordered comparison with RocketMQ's evaluation order: a null left
/// side returns null before the right side is evaluated.
fn compare_with<'a, P: Properties + ?Sized>(
    op: CmpOp,
    left: Option<Val<'a>>,
    right: &'a Node,
    props: &'a P,
) -> Result<Option<bool>, Fault> {
    let Some(left) = left else {
        return Ok(None);
    };
    let Some(right) = eval(right, props)? else {
        return Ok(None);
    };
    Ok(Some(op.holds(ordered_compare(left, right)?)))
}

/// AND (`decisive` FALSE) or OR (`decisive` TRUE), left to right: the first
/// term equal to `decisive` decides; otherwise any null makes the result
/// null; otherwise it is the other truth value.
fn junction<'a, P: Properties + ?Sized>(
    terms: &'a [Node],
    props: &'a P,
    decisive: bool,
) -> Eval<'a> {
    let mut unknown = false;
    for term in terms {
        match boolean(eval(term, props)?)? {
            Some(b) if b == decisive => return bool_val(Some(decisive)),
            Some(_) => {}
            None => unknown = true,
        }
    }
    bool_val((!unknown).then_some(!decisive))
}

pub(super) fn eval<'a, P: Properties + ?Sized>(node: &'a Node, props: &'a P) -> Eval<'a> {
    match node {
        Node::Null => Ok(None),
        Node::Bool(b) => Ok(Some(Val::Bool(*b))),
        Node::Int(i) => Ok(Some(Val::Int(*i))),
        Node::Long(l) => Ok(Some(Val::Long(*l))),
        Node::Double(d) => Ok(Some(Val::Double(*d))),
        Node::Str(s) => Ok(Some(Val::Str(s))),
        Node::Prop(name) => Ok(props.get(name).map(Val::Str)),
        // A property is a string, never a Boolean, so as a condition it is
        // false when present (even "true") and null when absent.
        Node::BoolCast(name) => Ok(props.get(name).map(|_| Val::Bool(false))),
        Node::Neg(operand) => Ok(match eval(operand, props)? {
            Some(Val::Int(i)) => Some(Val::Int(i.wrapping_neg())),
            Some(Val::Long(l)) => Some(Val::Long(l.wrapping_neg())),
            Some(Val::Double(d)) => Some(Val::Double(-d)),
            _ => None,
        }),
        Node::Not(operand) => bool_val(boolean(eval(operand, props)?)?.map(|b| !b)),
        Node::And(terms) => junction(terms, props, false),
        Node::Or(terms) => junction(terms, props, true),
        Node::Eq(left, right) => {
            let left = eval(left, props)?;
            let right = eval(right, props)?;
            bool_val(match (left, right) {
                (None, None) => Some(true),
                // Asymmetric in RocketMQ: null = x is null, x = null is false.
                (None, Some(_)) => None,
                (Some(_), None) => Some(false),
                (Some(l), Some(r)) => Some(java_compare(l, r)? == Ordering::Equal),
            })
        }
        Node::Cmp(op, left, right) => {
            let left = eval(left, props)?;
            bool_val(compare_with(*op, left, right, props)?)
        }
        Node::Between {
            value,
            low,
            high,
            negated,
        } => {
            // RocketMQ evaluates `value` once per comparison; it is pure, so
            // once is enough.
            let value = eval(value, props)?;
            let (first_op, second_op, decisive) = if *negated {
                (CmpOp::Lt, CmpOp::Gt, true)
            } else {
                (CmpOp::Ge, CmpOp::Le, false)
            };
            let first = compare_with(first_op, value, low, props)?;
            if first == Some(decisive) {
                return bool_val(first);
            }
            let second = compare_with(second_op, value, high, props)?;
            bool_val(match (first, second) {
                (_, Some(b)) if b == decisive => Some(b),
                (Some(_), Some(b)) => Some(b),
                _ => None,
            })
        }
        Node::In { prop, set, negated } => bool_val(
            props
                .get(prop)
                .map(|value| set.binary_search_by(|item| (**item).cmp(value)).is_ok() != *negated),
        ),
        Node::Text {
            op,
            negated,
            value,
            needle,
        } => {
            // An empty search string is false before the operand is even
            // evaluated; null and non-strings are false, for the NOT forms too.
            if needle.is_empty() {
                return bool_val(Some(false));
            }
            bool_val(Some(match eval(value, props)? {
                Some(Val::Str(s)) => op.test(s, needle) != *negated,
                _ => false,
            }))
        }
    }
}
