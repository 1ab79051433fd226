//! The user pages: search, detail, create, lifecycle actions.

pub mod actions;
pub mod create;
pub mod detail;
pub mod factors;
pub mod search;
