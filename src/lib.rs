//! admin-portal: a server-rendered internal admin portal in front of Okta.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod db;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod http;
pub mod metrics;
pub mod okta;
pub mod ops;
pub mod registration;
pub mod routes;
pub mod session_store;
pub mod startup;
pub mod state;
pub mod supersede;
pub mod web;

pub use config::{Config, ValidConfig};
pub use startup::{Application, RunningApp};
