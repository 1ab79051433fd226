//! The audit trail: who did what to whom, when, why, and with what outcome.
//!
//! Append-only: the store only inserts (the schema refuses UPDATE and DELETE).
//!
//! - `event`: what is recorded (`NewEvent`, its builder) and what is read back (`AuditRecord`);
//! - `row`: the content as stored and hashed, the column sizes, the daily rollup;
//! - `store`: `AuditStore` (append to the chain, read back), `query` (filters, pages, charts,
//!   the record stream), `integrity` (verify, prune), `throttle` (anonymous failures),
//!   `unfinished` (the write-ahead row of a change sent to Okta, for crash safety);
//! - `dialect`: the only place SQLite and PostgreSQL differ.

pub(crate) mod dialect;
mod event;
pub mod integrity;
pub mod query;
mod row;
pub mod seed;
mod store;
pub mod throttle;
pub mod unfinished;

pub use event::{Action, Actor, AuditRecord, NewEvent, Outcome, RequestMeta, Target};
pub use query::{ActivityFilter, ActivityPage};
pub(crate) use row::RowContent;
pub use row::{GENESIS, MAX_ID, MAX_TEXT, clip_to, format_timestamp};
pub use store::AuditStore;
