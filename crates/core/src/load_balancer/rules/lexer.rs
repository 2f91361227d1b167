//! Tokens of the rules language: Cloudflare's Wireshark-like filter syntax.

/// One token and the byte offset it starts at (for messages: "at character 17").
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub at: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// A run of letters, digits and `_ . : /` (and a leading `-`): a field or function name,
    /// a word operator (`eq`, `and`, `in`), a number, an address, a network or a range. The
    /// parser decides which, knowing what it expects.
    Word(String),
    /// A quoted string, escapes resolved (`"a\"b"`), or a raw string (`r"…"`, `r#"…"#`).
    Str(String),
    /// A quoted string with an escape other than `\"`, `\\` and `\xHH`: only a regular
    /// expression may be written so (`"\.php$"`); the text is as written but for `\"`, and
    /// the message says why it is no string.
    Pattern(String, String),
    /// Punctuation and symbolic operators: `( ) { } [ ] , * == != < <= > >= ~ ! && || ^^`.
    Sym(&'static str),
}

const SYMBOLS: [&str; 18] = [
    "==", "!=", "<=", ">=", "&&", "||", "^^", "(", ")", "{", "}", "[", "]", ",", "*", "<", ">", "~",
];

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/')
}

/// Splits a condition into tokens, or says where it cannot.
pub(super) fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' {
            let (text, next) = quoted(&chars, i + 1, at)?;
            out.push(Token { at, kind: text });
            i = next;
            continue;
        }
        if c == 'r' && matches!(chars.get(i + 1), Some((_, '"' | '#'))) {
            let (text, next) = raw(src, &chars, i + 1, at)?;
            out.push(Token {
                at,
                kind: Kind::Str(text),
            });
            i = next;
            continue;
        }
        if c == '!' && chars.get(i + 1).map(|p| p.1) != Some('=') {
            out.push(Token {
                at,
                kind: Kind::Sym("!"),
            });
            i += 1;
            continue;
        }
        if word_char(c) || (c == '-' && chars.get(i + 1).is_some_and(|p| p.1.is_ascii_digit())) {
            let start = i;
            i += 1;
            while i < chars.len() && word_char(chars[i].1) {
                i += 1;
            }
            let end = chars.get(i).map_or(src.len(), |p| p.0);
            out.push(Token {
                at,
                kind: Kind::Word(src[chars[start].0..end].to_owned()),
            });
            continue;
        }
        let rest = &src[at..];
        let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
            return Err(format!("at character {}: unexpected {c:?}", at + 1));
        };
        out.push(Token {
            at,
            kind: Kind::Sym(sym),
        });
        i += sym.chars().count();
    }
    Ok(out)
}

/// A `"…"` string from just after its opening quote: `\"`, `\\` and `\xHH` escapes; any
/// other escape makes it a pattern (see [`Kind::Pattern`]).
fn quoted(chars: &[(usize, char)], mut i: usize, at: usize) -> Result<(Kind, usize), String> {
    let mut text = String::new();
    let mut pattern = String::new();
    let mut not_string: Option<String> = None;
    while let Some(&(_, c)) = chars.get(i) {
        match c {
            '"' => {
                let kind = match not_string {
                    None => Kind::Str(text),
                    Some(why) => Kind::Pattern(pattern, why),
                };
                return Ok((kind, i + 1));
            }
            '\\' => {
                let esc = chars.get(i + 1).map(|p| p.1);
                match esc {
                    Some('"') => {
                        text.push('"');
                        pattern.push('"');
                    }
                    Some('\\') => {
                        text.push('\\');
                        pattern.push_str("\\\\");
                    }
                    Some('x') => {
                        // Hex digits only (ASCII, so one byte each: `i` counts characters).
                        let hex: String = chars
                            .iter()
                            .skip(i + 2)
                            .take(2)
                            .map(|p| p.1)
                            .take_while(char::is_ascii_hexdigit)
                            .collect();
                        match u8::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 2) {
                            Some(byte) => text.push(char::from(byte)),
                            None => {
                                not_string.get_or_insert_with(|| {
                                    format!(
                                        "at character {}: \\x must be followed by two hex digits",
                                        chars[i].0 + 1
                                    )
                                });
                            }
                        }
                        pattern.push_str("\\x");
                        pattern.push_str(&hex);
                        i += hex.len();
                    }
                    Some(other) => {
                        not_string.get_or_insert_with(|| {
                            format!(
                                "at character {}: unknown escape in a string (use \\\", \\\\ or \\xHH)",
                                chars[i].0 + 1
                            )
                        });
                        pattern.push('\\');
                        pattern.push(other);
                    }
                    None => break,
                }
                i += 2;
            }
            c => {
                text.push(c);
                pattern.push(c);
                i += 1;
            }
        }
    }
    Err(format!("at character {}: the string never ends", at + 1))
}

/// A raw string from just after its `r`: `"…"` or `#…#"…"#…#`, no escapes.
fn raw(
    src: &str,
    chars: &[(usize, char)],
    mut i: usize,
    at: usize,
) -> Result<(String, usize), String> {
    let mut hashes = 0;
    while chars.get(i).map(|p| p.1) == Some('#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i).map(|p| p.1) != Some('"') {
        return Err(format!(
            "at character {}: a raw string is r\"…\" or r#\"…\"#",
            at + 1
        ));
    }
    let start = chars.get(i + 1).map_or(src.len(), |p| p.0);
    let close = format!("\"{}", "#".repeat(hashes));
    let Some(len) = src[start..].find(&close) else {
        return Err(format!(
            "at character {}: the raw string never ends",
            at + 1
        ));
    };
    let end = start + len + close.len();
    let next = chars.iter().position(|p| p.0 >= end).unwrap_or(chars.len());
    Ok((src[start..start + len].to_owned(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        tokens(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn words_strings_and_symbols() {
        assert_eq!(
            kinds(
                r##"http.host eq "a\"b" && !x[*] != r#"q"x"# ip.src in {10.0.0.0/8 ::1} -3 1..5"##
            ),
            vec![
                Kind::Word("http.host".into()),
                Kind::Word("eq".into()),
                Kind::Str("a\"b".into()),
                Kind::Sym("&&"),
                Kind::Sym("!"),
                Kind::Word("x".into()),
                Kind::Sym("["),
                Kind::Sym("*"),
                Kind::Sym("]"),
                Kind::Sym("!="),
                Kind::Str("q\"x".into()),
                Kind::Word("ip.src".into()),
                Kind::Word("in".into()),
                Kind::Sym("{"),
                Kind::Word("10.0.0.0/8".into()),
                Kind::Word("::1".into()),
                Kind::Sym("}"),
                Kind::Word("-3".into()),
                Kind::Word("1..5".into()),
            ]
        );
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            tokens("a \"b").unwrap_err(),
            "at character 3: the string never ends"
        );
        assert_eq!(
            tokens("a $b").unwrap_err(),
            "at character 3: unexpected '$'"
        );
        assert_eq!(
            kinds(r#""\.php$" "a\\b\x41""#),
            vec![
                Kind::Pattern(
                    "\\.php$".into(),
                    "at character 2: unknown escape in a string (use \\\", \\\\ or \\xHH)".into()
                ),
                Kind::Str("a\\bA".into()),
            ]
        );
    }

    #[test]
    fn a_bad_hex_escape_never_swallows_the_closing_quote() {
        // Before: "\xé" skipped two bytes' worth of characters, past the quote.
        for text in [r#""\xé" eq "x""#, r#""\x+f" eq "x""#, r#""\x4" eq "x""#] {
            let k = kinds(text);
            assert!(matches!(k[0], Kind::Pattern(..)), "{text}: {k:?}");
            assert_eq!(k[1], Kind::Word("eq".into()), "{text}: {k:?}");
        }
    }
}
