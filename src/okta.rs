//! The Okta Management API client. No web framework types in here.

pub mod budget;
pub mod client;
pub mod config;
pub mod dpop;
pub mod error;
pub mod factors;
pub mod logs;
pub mod models;
pub mod reads;
pub mod search;
pub mod users;

pub use client::OktaClient;
pub use config::{OktaConfig, OktaOAuthConfig};
pub use error::{OktaError, OktaErrorKind};
