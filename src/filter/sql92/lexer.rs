//! Tokens of RocketMQ's SQL92 dialect (`SelectorParser.jj`), produced on
//! demand so a lexical error is reported where the parser reaches it.

/// Token kinds. Literal values are read back from the source span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
    /// `0` or `[1-9][0-9]*` with an optional `l`/`L`.
    Int,
    /// Digits with a `.` and/or an exponent.
    Float,
    /// `'…'` with `''` standing for one quote.
    Str,
    Ident,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offsets into the source.
    pub start: usize,
    pub end: usize,
}

/// A lexical error: byte position and what is wrong there.
pub(super) type LexError = (usize, String);

const KEYWORDS: [(&str, Tok); 12] = [
    ("NOT", Tok::Not),
    ("AND", Tok::And),
    ("OR", Tok::Or),
    ("BETWEEN", Tok::Between),
    ("IN", Tok::In),
    ("TRUE", Tok::True),
    ("FALSE", Tok::False),
    ("NULL", Tok::Null),
    ("IS", Tok::Is),
    ("CONTAINS", Tok::Contains),
    ("STARTSWITH", Tok::StartsWith),
    ("ENDSWITH", Tok::EndsWith),
];

pub(super) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Lexer<'s> {
        Lexer { src, pos: 0 }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    /// Skips white space and comments.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') => self.pos += 1,
                Some(b'-') if self.byte(self.pos + 1) == Some(b'-') => {
                    // JavaCC's line comment must end with a line break; without
                    // one, `--` is two minus signs (so `a > --5` means a > 5).
                    let body = &bytes[self.pos + 2..];
                    match body.iter().position(|&b| b == b'\n' || b == b'\r') {
                        Some(eol) => self.pos += 2 + eol + 1,
                        None => return Ok(()),
                    }
                }
                Some(b'/') if self.byte(self.pos + 1) == Some(b'*') => {
                    match self.src[self.pos + 2..].find("*/") {
                        Some(close) => self.pos += 2 + close + 2,
                        None => {
                            return Err((self.pos, "unterminated `/*` comment".to_owned()));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    pub fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(c) = self.byte(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let tok = match c {
            b'\'' => self.string()?,
            b'0'..=b'9' => self.number()?,
            b'.' if self.byte(start + 1).is_some_and(|b| b.is_ascii_digit()) => self.number()?,
            _ if is_ident_start(c) => {
                while self.byte(self.pos).is_some_and(is_ident_char) {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                KEYWORDS
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(word))
                    .map_or(Tok::Ident, |&(_, t)| t)
            }
            _ => {
                let next = self.byte(start + 1);
                let (tok, len) = match (c, next) {
                    (b'<', Some(b'>')) => (Tok::Ne, 2),
                    (b'<', Some(b'=')) => (Tok::Le, 2),
                    (b'>', Some(b'=')) => (Tok::Ge, 2),
                    (b'<', _) => (Tok::Lt, 1),
                    (b'>', _) => (Tok::Gt, 1),
                    (b'=', _) => (Tok::Eq, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b'+', _) => (Tok::Plus, 1),
                    (b'-', _) => (Tok::Minus, 1),
                    _ => return Err((start, self.unexpected_char(start))),
                };
                self.pos += len;
                tok
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn unexpected_char(&self, at: usize) -> String {
        let ch = self.src[at..].chars().next().unwrap_or('?');
        let hint = match (ch, self.byte(at + 1)) {
            ('!', Some(b'=')) => " (not-equal is `<>`)",
            ('"', _) => " (strings are quoted with single quotes)",
            ('&', _) => " (conjunction is `AND`)",
            ('|', _) => " (disjunction is `OR`)",
            _ => "",
        };
        format!("unexpected character `{}`{hint}", ch.escape_debug())
    }

    fn string(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => {
                    return Err((start, "unterminated string literal".to_owned()));
                }
                Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(Tok::Str)
    }

    fn number(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        let digits = |lexer: &mut Lexer<'_>| {
            while lexer.byte(lexer.pos).is_some_and(|b| b.is_ascii_digit()) {
                lexer.pos += 1;
            }
        };
        digits(self);
        let mut float = false;
        if self.byte(self.pos) == Some(b'.') {
            float = true;
            self.pos += 1;
            digits(self);
        }
        if matches!(self.byte(self.pos), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.byte(self.pos + 1), Some(b'+' | b'-')));
            if self
                .byte(self.pos + 1 + sign)
                .is_some_and(|b| b.is_ascii_digit())
            {
                float = true;
                self.pos += 1 + sign;
                digits(self);
            }
        }
        if !float {
            if self.pos - start > 1 && self.byte(start) == Some(b'0') {
                return Err((
                    start,
                    format!(
                        "integer literal `{}` has a leading zero",
                        &self.src[start..self.pos]
                    ),
                ));
            }
            if self.byte(start) != Some(b'0') && matches!(self.byte(self.pos), Some(b'l' | b'L')) {
                self.pos += 1;
            }
        }
        if self.byte(self.pos).is_some_and(is_ident_char) {
            // JavaCC would split `0x1F` or `5abc` into a number and a name,
            // which never forms a valid expression; say so at the number.
            while self
                .byte(self.pos)
                .is_some_and(|b| is_ident_char(b) || b == b'.')
            {
                self.pos += 1;
            }
            return Err((
                start,
                format!("invalid number `{}`", &self.src[start..self.pos]),
            ));
        }
        Ok(if float { Tok::Float } else { Tok::Int })
    }
}

/// The value of a `Tok::Str` span: quotes stripped, `''` turned into `'`.
pub(super) fn string_value(span: &str) -> String {
    span[1..span.len() - 1].replace("''", "'")
}
