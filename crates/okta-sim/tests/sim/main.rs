//! The simulator's conformance suite: one binary, each test with its own simulator on a
//! loopback port, called over HTTP as Okta's clients would call Okta.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dpop;
mod factors;
mod harness;
mod oidc;
mod signin;
mod users;
