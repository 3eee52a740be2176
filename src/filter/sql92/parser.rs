//! Recursive-descent parser for RocketMQ's SQL92 grammar, with the checks
//! RocketMQ's expression factories make while building the tree.
//!
//! The rule structure follows `SelectorParser.jj` level by level, because
//! the levels are observable: `=`/`<>`/`IS` bind looser than `<`/`>`/
//! `BETWEEN`/`IN`/`CONTAINS`, and `NOT` binds tighter than all of them. The
//! checks depend on what kind of expression an operand is (a literal, a
//! property, a condition, or something else such as a negation), which the
//! [`Node`] variant tells.

use std::cmp::Ordering;

use super::eval::compare_constants;
use super::lexer::{string_value, Lexer, Tok, Token};
use super::{Sql92Error, MAX_DEPTH};

/// A compiled expression. Every variant other than the literals, `Prop` and
/// `Neg` is what RocketMQ calls a `BooleanExpression` (a condition).
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// The `NULL` literal.
    Null,
    Bool(bool),
    /// Integer literals that fit 32 bits are Java `Integer`s, others `Long`s;
    /// the difference decides whether a property is read with
    /// `Integer.valueOf` or `Long.valueOf`.
    Int(i32),
    Long(i64),
    Double(f64),
    Str(Box<str>),
    Prop(Box<str>),
    /// Unary minus.
    Neg(Box<Node>),
    /// A property used directly as a condition.
    BoolCast(Box<str>),
    Not(Box<Node>),
    /// Chains of AND (OR) are flattened, which keeps `a AND b AND c …`
    /// shallow without changing the evaluation order or result.
    And(Vec<Node>),
    Or(Vec<Node>),
    /// `=`; also `IS NULL` as `x = NULL`, and `<>`/`IS NOT NULL` under `Not`.
    Eq(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `x BETWEEN lo AND hi` is `x >= lo AND x <= hi`; negated it is
    /// `x < lo OR x > hi`.
    Between {
        value: Box<Node>,
        low: Box<Node>,
        high: Box<Node>,
        negated: bool,
    },
    In {
        prop: Box<str>,
        /// Sorted and deduplicated, for binary search.
        set: Box<[Box<str>]>,
        negated: bool,
    },
    Text {
        op: TextOp,
        negated: bool,
        value: Box<Node>,
        needle: Box<str>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl TextOp {
    pub fn test(self, haystack: &str, needle: &str) -> bool {
        match self {
            TextOp::Contains => haystack.contains(needle),
            TextOp::StartsWith => haystack.starts_with(needle),
            TextOp::EndsWith => haystack.ends_with(needle),
        }
    }
}

impl Node {
    fn is_constant(&self) -> bool {
        matches!(
            self,
            Node::Null
                | Node::Bool(_)
                | Node::Int(_)
                | Node::Long(_)
                | Node::Double(_)
                | Node::Str(_)
        )
    }

    fn is_number(&self) -> bool {
        matches!(self, Node::Int(_) | Node::Long(_) | Node::Double(_))
    }

    /// RocketMQ's `instanceof BooleanExpression`; TRUE, FALSE and NULL are
    /// both literals and conditions.
    fn is_condition(&self) -> bool {
        !matches!(
            self,
            Node::Int(_)
                | Node::Long(_)
                | Node::Double(_)
                | Node::Str(_)
                | Node::Prop(_)
                | Node::Neg(_)
        )
    }
}

/// A parsed operand with what error messages and the depth limit need.
struct Ex {
    node: Node,
    depth: usize,
    start: usize,
    end: usize,
}

pub(super) fn parse(src: &str) -> Result<Node, Sql92Error> {
    let mut parser = Parser {
        src,
        lexer: Lexer::new(src),
        ahead: Vec::with_capacity(2),
        prev: None,
        nesting: 0,
    };
    let ex = parser.or_expr()?;
    let ex = parser.as_condition(ex)?;
    let next = parser.peek()?;
    match next.tok {
        Tok::Eof => Ok(ex.node),
        // A `--` comment at the very end without a line break lexes as two
        // minus signs (see the lexer); RocketMQ ignores what follows a
        // complete expression, so such a comment works there and must here.
        Tok::Minus if src.as_bytes().get(next.start + 1) == Some(&b'-') => Ok(ex.node),
        Tok::RParen => Err(parser.syntax(next.start, "unmatched `)`".to_owned())),
        _ => Err(parser.syntax(
            next.start,
            format!(
                "expected AND, OR, an operator or the end, found {}",
                parser.describe(next)
            ),
        )),
    }
}

struct Parser<'s> {
    src: &'s str,
    lexer: Lexer<'s>,
    /// Tokens read but not consumed; at most two (`NOT IN`, `IS NOT`).
    ahead: Vec<Token>,
    /// The last consumed token, for "after `>`" in messages.
    prev: Option<Token>,
    /// Current depth of parentheses and prefix operators.
    nesting: usize,
}

/// How messages name an operator: symbols quoted, keywords bare.
fn op_display(tok: Tok) -> String {
    let name = op_name(tok);
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.to_owned()
    } else {
        format!("`{name}`")
    }
}

fn op_name(tok: Tok) -> &'static str {
    match tok {
        Tok::Not => "NOT",
        Tok::And => "AND",
        Tok::Or => "OR",
        Tok::Between => "BETWEEN",
        Tok::In => "IN",
        Tok::Is => "IS",
        Tok::Contains => "CONTAINS",
        Tok::StartsWith => "STARTSWITH",
        Tok::EndsWith => "ENDSWITH",
        Tok::Eq => "=",
        Tok::Ne => "<>",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        _ => "?",
    }
}

impl<'s> Parser<'s> {
    // ---- token access -------------------------------------------------

    fn fill(&mut self, n: usize) -> Result<(), Sql92Error> {
        while self.ahead.len() < n {
            let token = self
                .lexer
                .next_token()
                .map_err(|(at, message)| self.syntax(at, message))?;
            self.ahead.push(token);
        }
        Ok(())
    }

    fn peek(&mut self) -> Result<Token, Sql92Error> {
        self.fill(1)?;
        Ok(self.ahead[0])
    }

    fn peek2(&mut self) -> Result<Token, Sql92Error> {
        self.fill(2)?;
        Ok(self.ahead[1])
    }

    fn bump(&mut self) -> Result<Token, Sql92Error> {
        self.fill(1)?;
        let token = self.ahead.remove(0);
        self.prev = Some(token);
        Ok(token)
    }

    fn text(&self, start: usize, end: usize) -> &'s str {
        &self.src[start..end]
    }

    /// A token or span as messages quote it, shortened when long.
    fn quote(&self, start: usize, end: usize) -> String {
        let text = self.text(start, end);
        if text.len() <= 40 {
            return format!("`{text}`");
        }
        let mut cut = 37;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("`{}...`", &text[..cut])
    }

    fn describe(&self, token: Token) -> String {
        if token.tok == Tok::Eof {
            "the end of the expression".to_owned()
        } else {
            self.quote(token.start, token.end)
        }
    }

    fn after_prev(&self) -> String {
        match self.prev {
            Some(prev) => format!(" after {}", self.quote(prev.start, prev.end)),
            None => String::new(),
        }
    }

    // ---- errors ---------------------------------------------------------

    fn syntax(&self, position: usize, message: String) -> Sql92Error {
        Sql92Error::Syntax {
            expr: super::snippet(self.src),
            position,
            message,
        }
    }

    fn invalid(&self, position: usize, message: String) -> Sql92Error {
        Sql92Error::Invalid {
            expr: super::snippet(self.src),
            position,
            message,
        }
    }

    fn too_deep(&self, position: usize) -> Sql92Error {
        Sql92Error::TooDeep {
            expr: super::snippet(self.src),
            position,
            max: MAX_DEPTH,
        }
    }

    /// "expected X after `prev`[, found Y]"
    fn expected(&self, what: &str, found: Token) -> Sql92Error {
        let mut message = format!("expected {what}{}", self.after_prev());
        if found.tok != Tok::Eof {
            message.push_str(&format!(", found {}", self.describe(found)));
        }
        self.syntax(found.start, message)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, Sql92Error> {
        let next = self.peek()?;
        if next.tok != tok {
            return Err(self.expected(what, next));
        }
        self.bump()
    }

    // ---- building ---------------------------------------------------------

    fn make(&self, node: Node, depth: usize, start: usize, end: usize) -> Result<Ex, Sql92Error> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(start));
        }
        Ok(Ex {
            node,
            depth,
            start,
            end,
        })
    }

    /// RocketMQ's `asBooleanExpression`: conditions pass, a property is read
    /// as a boolean, anything else is an error.
    fn as_condition(&self, ex: Ex) -> Result<Ex, Sql92Error> {
        if ex.node.is_condition() {
            return Ok(ex);
        }
        if let Node::Prop(name) = ex.node {
            return Ok(Ex {
                node: Node::BoolCast(name),
                ..ex
            });
        }
        Err(self.invalid(
            ex.start,
            format!(
                "expected a condition, found {} (a value, not a comparison)",
                self.quote(ex.start, ex.end)
            ),
        ))
    }

    /// RocketMQ's `checkLessThanOperand`: literals must be numbers, and
    /// conditions cannot be ordered.
    fn check_ordered(&self, op: Tok, ex: &Ex) -> Result<(), Sql92Error> {
        let bad = if ex.node.is_constant() {
            !ex.node.is_number()
        } else {
            ex.node.is_condition()
        };
        if bad {
            return Err(self.invalid(
                ex.start,
                format!(
                    "{} needs a number or a property, found {}",
                    op_display(op),
                    self.quote(ex.start, ex.end)
                ),
            ));
        }
        Ok(())
    }

    /// RocketMQ's `checkEqualOperand` and `checkEqualOperandCompatability`.
    fn check_equal(&self, op: Tok, left: &Ex, right: &Ex) -> Result<(), Sql92Error> {
        for side in [left, right] {
            if matches!(side.node, Node::Null) {
                return Err(self.invalid(
                    side.start,
                    format!(
                        "{} cannot compare with NULL; use IS NULL or IS NOT NULL",
                        op_display(op)
                    ),
                ));
            }
        }
        if matches!(left.node, Node::Bool(_))
            && right.node.is_constant()
            && !matches!(right.node, Node::Bool(_))
        {
            return Err(self.invalid(
                left.start,
                format!(
                    "{} cannot be compared with {}",
                    self.quote(left.start, left.end),
                    self.quote(right.start, right.end)
                ),
            ));
        }
        Ok(())
    }

    fn enter(&mut self, at: usize) -> Result<(), Sql92Error> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        Ok(())
    }

    // ---- grammar ----------------------------------------------------------

    fn or_expr(&mut self) -> Result<Ex, Sql92Error> {
        let mut left = self.and_expr()?;
        while self.peek()?.tok == Tok::Or {
            self.bump()?;
            let right = self.and_expr()?;
            left = self.logic(left, right, false)?;
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Ex, Sql92Error> {
        let mut left = self.equality()?;
        while self.peek()?.tok == Tok::And {
            self.bump()?;
            let right = self.equality()?;
            left = self.logic(left, right, true)?;
        }
        Ok(left)
    }

    fn logic(&self, left: Ex, right: Ex, is_and: bool) -> Result<Ex, Sql92Error> {
        let left = self.as_condition(left)?;
        let right = self.as_condition(right)?;
        let (start, end) = (left.start, right.end);
        let (mut terms, depth) = match (left.node, is_and) {
            (Node::And(terms), true) | (Node::Or(terms), false) => {
                (terms, left.depth.max(right.depth + 1))
            }
            (other, _) => (vec![other], left.depth.max(right.depth) + 1),
        };
        terms.push(right.node);
        let node = if is_and {
            Node::And(terms)
        } else {
            Node::Or(terms)
        };
        self.make(node, depth, start, end)
    }

    fn equality(&mut self) -> Result<Ex, Sql92Error> {
        let mut left = self.comparison()?;
        loop {
            let op = self.peek()?;
            left = match op.tok {
                Tok::Eq | Tok::Ne => {
                    self.bump()?;
                    let right = self.comparison()?;
                    self.check_equal(op.tok, &left, &right)?;
                    let (start, end) = (left.start, right.end);
                    let depth = left.depth.max(right.depth) + 1;
                    let eq = Node::Eq(Box::new(left.node), Box::new(right.node));
                    if op.tok == Tok::Eq {
                        self.make(eq, depth, start, end)?
                    } else {
                        self.make(Node::Not(Box::new(eq)), depth + 1, start, end)?
                    }
                }
                Tok::Is => {
                    self.bump()?;
                    let negated = self.peek()?.tok == Tok::Not;
                    if negated {
                        self.bump()?;
                    }
                    let null =
                        self.expect(Tok::Null, if negated { "NULL" } else { "NULL or NOT NULL" })?;
                    let eq = Node::Eq(Box::new(left.node), Box::new(Node::Null));
                    if negated {
                        let node = Node::Not(Box::new(eq));
                        self.make(node, left.depth + 2, left.start, null.end)?
                    } else {
                        self.make(eq, left.depth + 1, left.start, null.end)?
                    }
                }
                _ => return Ok(left),
            };
        }
    }

    fn comparison(&mut self) -> Result<Ex, Sql92Error> {
        let mut left = self.unary()?;
        loop {
            let op = self.peek()?;
            let (negated, op) = if op.tok == Tok::Not {
                let next = self.peek2()?;
                if !matches!(
                    next.tok,
                    Tok::Contains | Tok::StartsWith | Tok::EndsWith | Tok::Between | Tok::In
                ) {
                    self.bump()?;
                    return Err(
                        self.expected("CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN", next)
                    );
                }
                self.bump()?;
                (true, next)
            } else {
                (false, op)
            };
            left = match op.tok {
                Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le => {
                    self.bump()?;
                    let right = self.unary()?;
                    self.check_ordered(op.tok, &left)?;
                    self.check_ordered(op.tok, &right)?;
                    let cmp = match op.tok {
                        Tok::Gt => CmpOp::Gt,
                        Tok::Ge => CmpOp::Ge,
                        Tok::Lt => CmpOp::Lt,
                        _ => CmpOp::Le,
                    };
                    let (start, end) = (left.start, right.end);
                    let depth = left.depth.max(right.depth) + 1;
                    let node = Node::Cmp(cmp, Box::new(left.node), Box::new(right.node));
                    self.make(node, depth, start, end)?
                }
                Tok::Contains | Tok::StartsWith | Tok::EndsWith => {
                    self.bump()?;
                    let needle = self.expect(Tok::Str, "a string literal")?;
                    let text_op = match op.tok {
                        Tok::Contains => TextOp::Contains,
                        Tok::StartsWith => TextOp::StartsWith,
                        _ => TextOp::EndsWith,
                    };
                    let node = Node::Text {
                        op: text_op,
                        negated,
                        needle: string_value(self.text(needle.start, needle.end)).into(),
                        value: Box::new(left.node),
                    };
                    self.make(node, left.depth + 1, left.start, needle.end)?
                }
                Tok::Between => {
                    self.bump()?;
                    let low = self.unary()?;
                    self.expect(Tok::And, "AND")?;
                    let high = self.unary()?;
                    for side in [&left, &low, &high] {
                        self.check_ordered(Tok::Between, side)?;
                    }
                    // RocketMQ checks the bounds' order only for NOT-less
                    // BETWEEN, and only when both are plain literals (so
                    // `-5` is not checked: it is a negation).
                    if !negated
                        && low.node.is_constant()
                        && high.node.is_constant()
                        && compare_constants(&high.node, &low.node) == Some(Ordering::Less)
                    {
                        return Err(self.invalid(
                            low.start,
                            format!(
                                "BETWEEN bounds are reversed: {} is greater than {}",
                                self.quote(low.start, low.end),
                                self.quote(high.start, high.end)
                            ),
                        ));
                    }
                    let (start, end) = (left.start, high.end);
                    let depth = left.depth.max(low.depth).max(high.depth) + 1;
                    let node = Node::Between {
                        value: Box::new(left.node),
                        low: Box::new(low.node),
                        high: Box::new(high.node),
                        negated,
                    };
                    self.make(node, depth, start, end)?
                }
                Tok::In => {
                    self.bump()?;
                    let Node::Prop(prop) = left.node else {
                        return Err(self.invalid(
                            left.start,
                            format!(
                                "IN needs a property on its left, found {}",
                                self.quote(left.start, left.end)
                            ),
                        ));
                    };
                    self.expect(Tok::LParen, "`(`")?;
                    let mut set = Vec::new();
                    loop {
                        let item = self.expect(Tok::Str, "a string literal")?;
                        set.push(string_value(self.text(item.start, item.end)).into_boxed_str());
                        let next = self.peek()?;
                        match next.tok {
                            Tok::Comma => {
                                self.bump()?;
                            }
                            Tok::RParen => break,
                            _ => return Err(self.expected("`,` or `)`", next)),
                        }
                    }
                    let close = self.bump()?;
                    set.sort_unstable();
                    set.dedup();
                    let node = Node::In {
                        prop,
                        set: set.into_boxed_slice(),
                        negated,
                    };
                    self.make(node, 1, left.start, close.end)?
                }
                _ => return Ok(left),
            };
        }
    }

    fn unary(&mut self) -> Result<Ex, Sql92Error> {
        let op = self.peek()?;
        if !matches!(op.tok, Tok::Plus | Tok::Minus | Tok::Not) {
            return self.primary();
        }
        self.bump()?;
        self.enter(op.start)?;
        let operand = self.unary()?;
        self.nesting -= 1;
        let end = operand.end;
        match op.tok {
            // Unary plus is the operand itself, even for the checks above:
            // `+'a'` is still a string literal.
            Tok::Plus => Ok(Ex {
                start: op.start,
                ..operand
            }),
            Tok::Minus => self.make(
                Node::Neg(Box::new(operand.node)),
                operand.depth + 1,
                op.start,
                end,
            ),
            _ => {
                let operand = self.as_condition(operand)?;
                self.make(
                    Node::Not(Box::new(operand.node)),
                    operand.depth + 1,
                    op.start,
                    end,
                )
            }
        }
    }

    fn primary(&mut self) -> Result<Ex, Sql92Error> {
        let token = self.peek()?;
        let (start, end) = (token.start, token.end);
        let text = self.text(start, end);
        let node = match token.tok {
            Tok::Str => Node::Str(string_value(text).into()),
            Tok::Int => self.integer(token)?,
            Tok::Float => self.float(token)?,
            Tok::True => Node::Bool(true),
            Tok::False => Node::Bool(false),
            Tok::Null => Node::Null,
            Tok::Ident => Node::Prop(text.into()),
            Tok::LParen => {
                self.bump()?;
                self.enter(start)?;
                let inner = self.or_expr()?;
                let next = self.peek()?;
                if next.tok == Tok::Eof {
                    return Err(self.syntax(start, "unclosed `(`".to_owned()));
                }
                if next.tok != Tok::RParen {
                    return Err(self.syntax(
                        next.start,
                        format!(
                            "expected `)` for the `(` at position {start}, found {}",
                            self.describe(next)
                        ),
                    ));
                }
                let close = self.bump()?;
                self.nesting -= 1;
                // Parentheses leave the kind of expression unchanged, as in
                // RocketMQ: `(a) IN ('x')` is fine, `('x') > 1` is not.
                return Ok(Ex {
                    start,
                    end: close.end,
                    ..inner
                });
            }
            Tok::Eof if self.prev.is_none() => {
                return Err(self.syntax(start, "the expression is empty".to_owned()));
            }
            _ => return Err(self.expected("a literal or property", token)),
        };
        self.bump()?;
        self.make(node, 1, start, end)
    }

    /// Integer literals: 64-bit range, then narrowed to 32 bits if it fits.
    fn integer(&self, token: Token) -> Result<Node, Sql92Error> {
        let text = self.text(token.start, token.end);
        let digits = text.trim_end_matches(['l', 'L']);
        let value: i64 = digits.parse().map_err(|_| {
            self.invalid(
                token.start,
                format!("integer literal `{text}` is out of the 64-bit range"),
            )
        })?;
        Ok(match i32::try_from(value) {
            Ok(small) => Node::Int(small),
            Err(_) => Node::Long(value),
        })
    }

    /// Floating-point literals: RocketMQ rejects those that overflow and,
    /// comparing with `Double.MIN_VALUE` (the smallest positive double),
    /// also zero and those that underflow to zero.
    fn float(&self, token: Token) -> Result<Node, Sql92Error> {
        let text = self.text(token.start, token.end);
        // The lexer only produces Java float syntax, which Rust also parses.
        let value: f64 = text.parse().unwrap_or(f64::NAN);
        if value.is_infinite() || value.is_nan() {
            return Err(self.invalid(
                token.start,
                format!("floating-point literal `{text}` is greater than 1.7976931348623157E308"),
            ));
        }
        if value == 0.0 {
            return Err(self.invalid(
                token.start,
                format!(
                    "floating-point literal `{text}` is less than 4.9E-324, which RocketMQ rejects; write 0 for zero"
                ),
            ));
        }
        Ok(Node::Double(value))
    }
}
