//! RocketMQ's SQL92 property filter: compiles the expression of a consumer's
//! `SQL92` subscription and decides, message by message, whether the user
//! properties match it. Invalid expressions come back as [`Sql92Error`]s
//! whose text is fit for a response remark.
//!
//! Clients are written against Apache RocketMQ, so this reproduces RocketMQ's
//! `filter` module (`SelectorParser.jj` and the `expression` classes) and the
//! broker's `ExpressionMessageFilter`, oddities included, rather than
//! standard SQL:
//!
//! * **Precedence**, loosest first: `OR`; `AND`; `=` `<>` `IS [NOT] NULL`;
//!   `>` `>=` `<` `<=` `[NOT] BETWEEN` `[NOT] IN` `[NOT] CONTAINS`
//!   `[NOT] STARTSWITH` `[NOT] ENDSWITH`; prefix `+` `-` `NOT`. So `NOT`
//!   applies to the operand right after it: `NOT a > 5` is rejected (it would
//!   order a condition) and `NOT (a > 5)` is what works.
//! * **Literals**: `'text'` (`''` is a quote); integers, which are Java
//!   `Integer`s when they fit 32 bits and `Long`s otherwise (optional `L`, no
//!   leading zeros, no hex); floats with a point or an exponent, where zero is
//!   rejected because RocketMQ checks them against `Double.MIN_VALUE`; `TRUE`,
//!   `FALSE`, `NULL`. Keywords ignore case. Property names are
//!   `[A-Za-z_$][A-Za-z0-9_$]*` and cannot be keywords. `--` line and
//!   `/* */` block comments.
//! * **Compile-time checks**: `<`-family operators and `BETWEEN` take
//!   numbers, properties or negations, never string, boolean or `NULL`
//!   literals or conditions; `=`/`<>` reject a `NULL` literal and `TRUE`/
//!   `FALSE` on the left of another kind of literal; `IN` needs a property
//!   and string literals; `CONTAINS` and friends need a string literal; `AND`,
//!   `OR`, `NOT` and the whole expression need conditions, where a bare
//!   property counts; `BETWEEN` with two literal bounds rejects low > high.
//! * **Values**: properties are strings. A string meeting a number is
//!   converted with the number's Java type: `Integer.valueOf` against a
//!   32-bit literal (so `a > 5` fails for "5.5" or "10000000000"),
//!   `Long.valueOf`, `Double.valueOf`. Two strings under `<`-family
//!   operators compare as doubles; under `=` they compare as text. A string
//!   equals `TRUE` exactly when it is "true" in any case. A bare property as
//!   a condition is false when present (a string is never a Boolean).
//! * **Failures**: a conversion that fails throws in RocketMQ and the broker
//!   then drops the message, so it makes the whole expression not match, even
//!   under an `OR` whose other side is true (unless that side came first).
//! * **Null** (missing property): comparisons and `NOT` of null are null,
//!   `AND`/`OR` are three-valued, and only TRUE matches. `x IS NULL` is true
//!   for missing properties, `a = b` is true when both are missing,
//!   `'x' = a` is false (not null) when `a` is missing, `[NOT] IN` is null,
//!   and `CONTAINS`, `STARTSWITH`, `ENDSWITH` and their `NOT` forms are false
//!   for null, non-strings and an empty search string.
//!
//! Deliberate differences: RocketMQ ignores whatever follows a complete
//! expression (`a = 1 b` means `a = 1` there, a likely typo); here it is an
//! error, except a last `--` comment without a line break. Expressions are
//! capped at [`MAX_LEN`] bytes and [`MAX_DEPTH`] levels of nesting, where
//! RocketMQ would run out of stack. Non-ASCII digits are not numbers.

mod eval;
mod java;
mod lexer;
mod parser;

pub use super::properties::{Properties, RawProperties};

/// Longest accepted expression, in bytes.
pub const MAX_LEN: usize = 64 * 1024;
/// Deepest accepted nesting of parentheses, prefix operators and operators
/// (a chain of ANDs or ORs counts once).
pub const MAX_DEPTH: usize = 64;

/// A compiled SQL92 expression.
#[derive(Debug, Clone)]
pub struct Sql92Filter {
    source: Box<str>,
    root: parser::Node,
}

impl Sql92Filter {
    /// Parses and checks `expr`.
    pub fn compile(expr: &str) -> Result<Sql92Filter, Sql92Error> {
        if expr.len() > MAX_LEN {
            return Err(Sql92Error::TooLong {
                len: expr.len(),
                max: MAX_LEN,
            });
        }
        Ok(Sql92Filter {
            source: expr.into(),
            root: parser::parse(expr)?,
        })
    }

    /// True when the message with these properties matches. Does not
    /// allocate.
    pub fn matches(&self, props: &impl Properties) -> bool {
        eval::matches(&self.root, props)
    }

    /// The original text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Why an expression was rejected. The text names the expression (shortened
/// when long), what is wrong, and the byte position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Sql92Error {
    #[error("SQL92 expression is {len} bytes long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    /// Not in the grammar: a bad character, a missing operand, an unclosed
    /// parenthesis.
    #[error("SQL92 expression `{expr}`: {message} at position {position}")]
    Syntax {
        expr: String,
        position: usize,
        message: String,
    },
    /// Grammatical, but RocketMQ rejects it: an operand of the wrong kind, a
    /// literal out of range, reversed BETWEEN bounds.
    #[error("SQL92 expression `{expr}`: {message} at position {position}")]
    Invalid {
        expr: String,
        position: usize,
        message: String,
    },
    #[error("SQL92 expression `{expr}`: nested deeper than {max} levels at position {position}")]
    TooDeep {
        expr: String,
        position: usize,
        max: usize,
    },
}

impl Sql92Error {
    /// Byte offset of the problem in the expression, when there is one.
    pub fn position(&self) -> Option<usize> {
        match self {
            Sql92Error::TooLong { .. } => None,
            Sql92Error::Syntax { position, .. }
            | Sql92Error::Invalid { position, .. }
            | Sql92Error::TooDeep { position, .. } => Some(*position),
        }
    }
}

/// The expression as error messages quote it: remarks should stay short.
fn snippet(src: &str) -> String {
    const MAX: usize = 200;
    if src.len() <= MAX {
        return src.to_owned();
    }
    let mut cut = MAX;
    while !src.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &src[..cut])
}

#[cfg(test)]
mod tests;
