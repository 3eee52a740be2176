//! The `language` header field (spec §1.7): which client library sent a command.
//!
//! The JSON header carries the name (`"JAVA"`) and the binary header carries the
//! byte code (`0`). The server never changes behaviour based on the language; it
//! only shows it in connection listings. Decoding is therefore lenient: a name or
//! code that this table does not know becomes [`LanguageCode::Other`] instead of
//! failing the whole command.

use std::fmt;

/// Sender language, with the byte values of Java's `LanguageCode` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LanguageCode {
    /// `JAVA` (0). The server sends this value itself: older Java clients have no
    /// `RUST` entry, and fastjson would turn an unknown name into null.
    Java = 0,
    /// `CPP` (1): the C++ client and the Python/Node wrappers built on it.
    Cpp = 1,
    /// `DOTNET` (2).
    Dotnet = 2,
    /// `PYTHON` (3).
    Python = 3,
    /// `DELPHI` (4).
    Delphi = 4,
    /// `ERLANG` (5).
    Erlang = 5,
    /// `RUBY` (6).
    Ruby = 6,
    /// `OTHER` (7). Also used for any name or code this table does not know.
    Other = 7,
    /// `HTTP` (8).
    Http = 8,
    /// `GO` (9).
    Go = 9,
    /// `PHP` (10).
    Php = 10,
    /// `OMS` (11).
    Oms = 11,
    /// `RUST` (12, 5.x only).
    Rust = 12,
    /// `NODE_JS` (13, 5.x only).
    NodeJs = 13,
}

impl LanguageCode {
    /// Every language, in byte-code order.
    pub const ALL: [LanguageCode; 14] = [
        LanguageCode::Java,
        LanguageCode::Cpp,
        LanguageCode::Dotnet,
        LanguageCode::Python,
        LanguageCode::Delphi,
        LanguageCode::Erlang,
        LanguageCode::Ruby,
        LanguageCode::Other,
        LanguageCode::Http,
        LanguageCode::Go,
        LanguageCode::Php,
        LanguageCode::Oms,
        LanguageCode::Rust,
        LanguageCode::NodeJs,
    ];

    /// The byte written in the binary header.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name written in the JSON header.
    pub fn name(self) -> &'static str {
        match self {
            LanguageCode::Java => "JAVA",
            LanguageCode::Cpp => "CPP",
            LanguageCode::Dotnet => "DOTNET",
            LanguageCode::Python => "PYTHON",
            LanguageCode::Delphi => "DELPHI",
            LanguageCode::Erlang => "ERLANG",
            LanguageCode::Ruby => "RUBY",
            LanguageCode::Other => "OTHER",
            LanguageCode::Http => "HTTP",
            LanguageCode::Go => "GO",
            LanguageCode::Php => "PHP",
            LanguageCode::Oms => "OMS",
            LanguageCode::Rust => "RUST",
            LanguageCode::NodeJs => "NODE_JS",
        }
    }

    /// The language with byte code `code`, if the table knows it.
    pub fn from_code(code: u8) -> Option<LanguageCode> {
        LanguageCode::ALL.get(usize::from(code)).copied()
    }

    /// The language called `name`, ignoring ASCII case, if the table knows it.
    /// Case is ignored because nothing is gained by rejecting `"java"`.
    pub fn from_name(name: &str) -> Option<LanguageCode> {
        LanguageCode::ALL
            .into_iter()
            .find(|language| language.name().eq_ignore_ascii_case(name))
    }

    /// Like [`from_code`](Self::from_code), but an unknown code becomes
    /// [`Other`](Self::Other).
    pub fn from_code_lenient(code: u8) -> LanguageCode {
        LanguageCode::from_code(code).unwrap_or(LanguageCode::Other)
    }

    /// Like [`from_name`](Self::from_name), but an unknown name becomes
    /// [`Other`](Self::Other).
    pub fn from_name_lenient(name: &str) -> LanguageCode {
        LanguageCode::from_name(name).unwrap_or(LanguageCode::Other)
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::LanguageCode;

    #[test]
    fn byte_codes_match_the_spec_table() {
        let expected = [
            (0, "JAVA"),
            (1, "CPP"),
            (2, "DOTNET"),
            (3, "PYTHON"),
            (4, "DELPHI"),
            (5, "ERLANG"),
            (6, "RUBY"),
            (7, "OTHER"),
            (8, "HTTP"),
            (9, "GO"),
            (10, "PHP"),
            (11, "OMS"),
            (12, "RUST"),
            (13, "NODE_JS"),
        ];
        for (code, name) in expected {
            let language = LanguageCode::from_code(code).expect("listed code");
            assert_eq!(language.code(), code);
            assert_eq!(language.name(), name);
            assert_eq!(LanguageCode::from_name(name), Some(language));
        }
    }

    #[test]
    fn unknown_values_fold_into_other() {
        assert_eq!(LanguageCode::from_code(14), None);
        assert_eq!(LanguageCode::from_code_lenient(255), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name("KOTLIN"), None);
        assert_eq!(LanguageCode::from_name_lenient(""), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name("go"), Some(LanguageCode::Go));
    }
}
