//! HTML pages, by feature.

pub mod activity;
pub mod assets;
pub mod auth;
pub mod errors;
pub mod forms;
pub mod htmx;
pub mod layout;
pub mod metrics;
pub mod pages;
pub mod security;
pub mod users;
