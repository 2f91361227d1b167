//! The in-memory store keeps the contract the real stores keep (where it applies: it has no
//! second connection and nothing survives it).
#![allow(clippy::unwrap_used)]

use vantage_store::contract;
use vantage_store::memory::MemoryStore;

#[test]
fn storage_is_bounded_and_one_destination_cannot_hide_another() {
    contract::storage_is_bounded_and_one_destination_cannot_hide_another(&MemoryStore::default());
}

#[test]
fn failed_deliveries_wait_and_give_up() {
    contract::failed_deliveries_wait_and_give_up(&MemoryStore::default());
}

#[test]
fn export_and_import_carry_everything() {
    contract::export_and_import_carry_everything(&MemoryStore::default(), &MemoryStore::default());
}
