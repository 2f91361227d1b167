//! Validation failures: which field (as a path into the request document) and why.

use std::fmt;

/// One step into a JSON document: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where in the request document a problem lies; rendered as a JSON pointer at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Segment>);

impl Path {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// RFC 6901 JSON pointer, e.g. `/origins/0/address`.
    pub fn to_pointer(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            out.push('/');
            match seg {
                Segment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                Segment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

impl fmt::Display for Path {
    /// Dotted form used in messages: `origins[0].address`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) if first => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// One field that failed a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Path,
    /// What is wrong, naming the field: `interval is not in range [5, 3600]`.
    pub detail: String,
}

impl Violation {
    pub fn new(path: Path, detail: impl Into<String>) -> Self {
        Self {
            path,
            detail: detail.into(),
        }
    }
}

/// Every problem found in one document, in document order. Validation reports them all at
/// once so a client fixes its request in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn push(&mut self, path: Path, detail: impl Into<String>) {
        self.0.push(Violation::new(path, detail));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was found, the violations otherwise.
    pub fn finish<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Runs a check that yields a value, recording its violation and substituting `fallback`
    /// so validation can continue and report every field at once.
    pub fn take<T>(&mut self, result: Result<T, Violation>, fallback: T) -> T {
        match result {
            Ok(v) => v,
            Err(v) => {
                self.0.push(v);
                fallback
            }
        }
    }
}

impl From<Violation> for Violations {
    fn from(v: Violation) -> Self {
        Self(vec![v])
    }
}

/// Checks `value` is within `[lo, hi]`, with the message Cloudflare uses.
pub fn in_range<T: PartialOrd + fmt::Display + Copy>(
    path: &Path,
    name: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<T, Violation> {
    if value < lo || value > hi {
        Err(Violation::new(
            path.clone(),
            format!("{name} is not in range [{lo}, {hi}]"),
        ))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_and_indexes() {
        let p = Path::root().key("origins").index(0).key("a/b~c");
        assert_eq!(p.to_pointer(), "/origins/0/a~1b~0c");
        assert_eq!(p.to_string(), "origins[0].a/b~c");
    }
}
