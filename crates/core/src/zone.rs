//! DNS zones: the namespaces load balancers live in.

use serde::{Deserialize, Serialize};

use crate::{AccountId, Timestamp, ZoneId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: ZoneId,
    pub account: AccountId,
    /// Lower case, no trailing dot; unique across the installation so that a hostname
    /// resolves to exactly one zone.
    pub name: String,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}
