//! The integration suite: one binary, the real simulator and the real portal.
//!
//! Set `ADMIN_PORTAL_TEST_POSTGRES_URL` (e.g. postgres://postgres@127.0.0.1:5432/test) to run
//! it against PostgreSQL instead of SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activity;
mod api;
mod api_matrix;
mod auth;
mod browser;
mod budget;
mod cli;
mod cluster;
mod crash;
mod csrf;
mod dpop;
mod factors;
mod faults;
mod fuzz;
mod hardening;
mod helpers;
mod metrics;
mod okta_client;
mod ops;
mod policy;
mod registration;
mod round_trips;
mod sessions;
mod users;
mod velocity;
mod web;
