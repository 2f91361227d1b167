//! Colour for people: ANSI styles when the output is a terminal and `NO_COLOR` is unset,
//! plain text otherwise (pipes, files, scripts).

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Paint {
    on: bool,
}

impl Paint {
    pub fn stdout() -> Paint {
        Paint {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn style(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn green(&self, s: &str) -> String {
        self.style("32", s)
    }

    pub fn red(&self, s: &str) -> String {
        self.style("31", s)
    }

    pub fn yellow(&self, s: &str) -> String {
        self.style("33", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.style("2", s)
    }

    pub fn bold(&self, s: &str) -> String {
        self.style("1", s)
    }
}

/// Text that came from the server (names, addresses, reasons) made safe for a terminal:
/// control characters are shown escaped (`\u{1b}`), so no tenant-chosen string can move the
/// cursor, recolour or forge lines in front of an operator.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_unicode().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::printable("plain ✔"), "plain ✔");
        assert_eq!(super::printable("a\x1b[2Kb\nc"), "a\\u{1b}[2Kb\\u{a}c");
    }
}
