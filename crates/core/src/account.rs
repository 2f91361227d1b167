//! Accounts: the tenants that own everything else.

use crate::{AccountId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_on: Timestamp,
}

/// Account names are free text, but not empty and not unreasonably long.
pub fn is_account_name(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control)
}
