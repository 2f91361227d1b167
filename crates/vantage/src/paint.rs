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
