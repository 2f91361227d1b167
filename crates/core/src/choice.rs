//! Closed sets of wire strings (`"random"`, `"cookie"`, …) as Rust enums, parsed in one place.

use crate::violation::{Path, Violations};

/// An enum whose every variant has one wire spelling.
pub trait Choice: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// Parses an optional wire string into `C`, recording a violation that lists the accepted
/// spellings and falling back to `default` so validation can go on.
pub fn choose<C: Choice>(v: &mut Violations, path: Path, raw: Option<&str>, default: C) -> C {
    let Some(s) = raw else { return default };
    C::parse(s).unwrap_or_else(|| {
        let accepted: Vec<String> = C::ALL.iter().map(|c| format!("{:?}", c.as_str())).collect();
        let field = path.to_string();
        v.push(
            path,
            format!("{field} must be one of {}, not {s:?}", accepted.join(", ")),
        );
        default
    })
}

/// Declares a [`Choice`] enum: `string_enum!(Name { Variant = "wire", … })`.
#[macro_export]
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $crate::choice::Choice for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }
    };
}

/// Declares, for a serialization boundary (stored rows, a protocol), its own copy of a core
/// enum: `mirror_enum!(RowName <=> module::CoreName { A, B })`. The variant names are the
/// serialized text, and the conversions both ways are exhaustive matches, so a variant added
/// to the core fails to compile at every boundary until that boundary decides how to carry
/// it. The using crate depends on `serde`.
#[macro_export]
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $row:ident <=> $m:ident :: $core:ident { $($v:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $row { $($v),+ }
        impl From<$m::$core> for $row {
            fn from(c: $m::$core) -> Self {
                match c { $($m::$core::$v => Self::$v),+ }
            }
        }
        impl From<$row> for $m::$core {
            fn from(r: $row) -> Self {
                match r { $($row::$v => $m::$core::$v),+ }
            }
        }
    };
}
