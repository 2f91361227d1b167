//! Object identifiers: 32 lowercase hex characters on the wire, 16 bytes in memory.
//!
//! New identifiers are made from bytes the caller supplies ([`AccountId::from_bytes`] and
//! friends), so the core never draws randomness itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identifier must be 32 lowercase hexadecimal characters")]
pub struct InvalidId;

fn parse_hex32(s: &str) -> Result<[u8; 16], InvalidId> {
    if s.len() != 32
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(InvalidId);
    }
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).map_err(|_| InvalidId)?;
    Ok(out)
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; 16]);

        // The bytes' order, compared as one big-endian integer: a couple of instructions
        // instead of a call to memcmp, for the ordered maps the catalog and snapshots are.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                u128::from_be_bytes(self.0).cmp(&u128::from_be_bytes(other.0))
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Wraps 16 bytes (normally fresh random bytes supplied by the caller).
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl From<$name> for [u8; 16] {
            fn from(id: $name) -> [u8; 16] {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                parse_hex32(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// An account: the tenant that owns monitors, pools and zones.
    AccountId
);
define_id!(
    /// A DNS zone, owned by an account; load balancers live in zones.
    ZoneId
);
define_id!(
    /// A health monitor.
    MonitorId
);
define_id!(
    /// A monitor group: several monitors judging each origin of a pool together.
    MonitorGroupId
);
define_id!(
    /// A pool of origins.
    PoolId
);
define_id!(
    /// A load balancer (one hostname in a zone).
    LoadBalancerId
);
define_id!(
    /// A webhook destination for notifications.
    WebhookId
);
define_id!(
    /// A notification policy: which health changes go to which destinations.
    PolicyId
);
define_id!(
    /// An API token (its identifier, never its secret).
    TokenId
);
define_id!(
    /// A user holding a global API key.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lowercase_hex() {
        let id: PoolId = "17b5962d775c646f3f9725cbc7a53df4".parse().unwrap();
        assert_eq!(id.to_string(), "17b5962d775c646f3f9725cbc7a53df4");
    }

    #[test]
    fn rejects_uppercase_short_and_non_hex() {
        for bad in [
            "17B5962D775C646F3F9725CBC7A53DF4",
            "17b5962d775c646f3f9725cbc7a53df",
            "17b5962d775c646f3f9725cbc7a53dfg",
            "",
        ] {
            assert_eq!(bad.parse::<PoolId>(), Err(InvalidId), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod order_tests {
    use super::PoolId;

    /// The integer comparison orders identifiers exactly as their bytes (and their hex) do.
    #[test]
    fn identifiers_order_as_their_bytes() {
        let samples: Vec<[u8; 16]> = vec![
            [0; 16],
            [255; 16],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [
                0x7f, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
            ],
        ];
        for a in &samples {
            for b in &samples {
                assert_eq!(
                    PoolId::from_bytes(*a).cmp(&PoolId::from_bytes(*b)),
                    a.cmp(b)
                );
                assert_eq!(
                    PoolId::from_bytes(*a).cmp(&PoolId::from_bytes(*b)),
                    PoolId::from_bytes(*a)
                        .to_string()
                        .cmp(&PoolId::from_bytes(*b).to_string())
                );
            }
        }
    }
}
