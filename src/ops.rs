//! The operations layer: every change the portal makes in Okta, for every front door (the
//! browser pages and the service API). No axum, no sessions, no HTML here.
//!
//! Each operation takes a [`Principal`](crate::auth::principal::Principal), a typed input and a validated [`Why`], and does, in
//! this order and nowhere else: **load** the user (and what the guards need, concurrently) →
//! **guard** ([`guard`]: permission, own account, protected populations, status and Okta's
//! `_links`, delete only when deprovisioned, allow-lists) → **Okta call** → **audit exactly
//! once** ([`record`]) → a typed outcome ([`Done`]) or error ([`OpError`]).
//!
//! Velocity caps ([`velocity`]) are checked last, right before the change is sent: an action
//! that reaches Okta counts against its principal's cap, a refused one does not.
//!
//! One audit failure policy, decided here: a refusal or a failed Okta call that cannot be
//! audited fails the request ([`OpError::Unrecorded`]); an Okta change that succeeded but
//! could not be audited is reported as done with [`Recorded::Missing`], which every front end
//! shows as "done, but not recorded" with the request id, and is logged at error level.

use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::SecretString;

use crate::audit::AuditStore;
use crate::auth::policy::Policy;
use crate::okta::models::{Group, User};
use crate::okta::{OktaClient, OktaError};

pub mod catalog;
pub mod config;
pub mod factors;
pub mod groups;
pub mod guard;
pub mod input;
pub mod lifecycle;
pub mod reads;
mod record;
pub mod refusal;
pub mod registration;
pub mod users;
pub mod velocity;

pub use catalog::Op;
pub use input::{FieldErrors, UserRef, Why, WhyErrors, WhyRules};
pub use refusal::Refusal;

use config::{MfaConfig, UsersConfig};

/// The operations, with what they need: Okta, the audit trail, the policy and the rules.
pub struct Ops {
    okta: Arc<OktaClient>,
    audit: AuditStore,
    policy: Arc<Policy>,
    users: UsersConfig,
    mfa: MfaConfig,
    why: WhyRules,
    velocity: velocity::Velocity,
}

impl Ops {
    pub fn new(
        okta: Arc<OktaClient>,
        audit: AuditStore,
        policy: Arc<Policy>,
        users: UsersConfig,
        mfa: MfaConfig,
        ticket_pattern: Option<regex::Regex>,
    ) -> Ops {
        let why = WhyRules::new(&users, ticket_pattern);
        Ops {
            okta,
            audit,
            policy,
            users,
            mfa,
            why,
            velocity: velocity::Velocity::new(
                crate::cluster::Shared::local(),
                velocity::VelocityConfig::default(),
            ),
        }
    }

    /// The rules a reason and ticket are checked against (front ends build a [`Why`] with them).
    pub fn why_rules(&self) -> &WhyRules {
        &self.why
    }

    pub fn users_config(&self) -> &UsersConfig {
        &self.users
    }

    pub fn mfa_config(&self) -> &MfaConfig {
        &self.mfa
    }

    /// Groups that no operation may touch: configured protected groups and every group the
    /// policy grants a permission to (taking over an agent's account is taking over the portal).
    fn protected_groups(&self) -> BTreeSet<String> {
        let mut groups = self.policy.privileged_groups();
        groups.extend(self.users.protected_groups.iter().cloned());
        groups
    }

    /// The user and their groups, fetched concurrently (for pages that show them).
    pub async fn read_user(&self, user: &UserRef) -> Result<(User, Vec<Group>), OktaError> {
        self.load(user).await
    }

    /// The user and their groups, fetched concurrently.
    async fn load(&self, user: &UserRef) -> Result<(User, Vec<Group>), OktaError> {
        let (u, g) = tokio::join!(
            self.okta.get_user(user.as_str()),
            self.okta.user_groups(user.as_str())
        );
        Ok((u?, g?))
    }
}

/// Whether the audit record of a change was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The id of the record.
    Yes(i64),
    /// The change happened in Okta but the record could not be written (logged at error level).
    Missing,
}

/// A one-time link Okta handed back (activation or password reset). Shown once to the person
/// who asked, never stored, never logged.
#[derive(Debug, Clone)]
pub struct OneTimeLink {
    pub label: &'static str,
    pub url: SecretString,
}

/// What a successful operation did.
#[derive(Debug)]
pub struct Done<T = ()> {
    /// What the operation produced (the created user, the enrolled factor, …).
    pub value: T,
    /// The user as loaded before the change, when there was one.
    pub before: Option<User>,
    /// The user's status after the change, from Okta's answer or its documented result.
    pub status_after: Option<String>,
    /// `X-Okta-Request-Id` of the change.
    pub okta_request_id: Option<String>,
    pub one_time_link: Option<OneTimeLink>,
    pub recorded: Recorded,
}

impl<T> Done<T> {
    /// The name of the user acted on, for messages ("" when there was none).
    pub fn user_name(&self) -> String {
        self.before
            .as_ref()
            .map(User::display_name)
            .unwrap_or_default()
    }
}

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The input is wrong; nothing was sent to Okta and nothing was recorded.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// A guard refused (recorded as denied). Carries the user when it was loaded.
    #[error("refused: {}", .refusal.message())]
    Refused {
        refusal: Refusal,
        user: Option<Box<User>>,
    },
    /// Okta refused or failed (recorded as a failure).
    #[error("Okta: {}", .error.summary)]
    Okta {
        error: Box<OktaError>,
        user: Option<Box<User>>,
    },
    /// A refusal or failure that could not be recorded: the request fails.
    #[error("the audit record could not be written")]
    Unrecorded(#[source] anyhow::Error),
}

impl OpError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> OpError {
        OpError::Invalid(FieldErrors::from([(field, message.into())]))
    }

    /// The user the operation was about, when it was loaded.
    pub fn user(&self) -> Option<&User> {
        match self {
            OpError::Refused { user, .. } | OpError::Okta { user, .. } => user.as_deref(),
            _ => None,
        }
    }
}

impl From<WhyErrors> for OpError {
    fn from(e: WhyErrors) -> OpError {
        OpError::Invalid(e.into_fields())
    }
}

/// Operations for unit tests of the guards: an in-memory audit store and an Okta client that
/// points at a closed loopback port (guards never call Okta).
#[cfg(test)]
pub(crate) async fn test_ops(users: UsersConfig) -> Ops {
    use crate::config::{DatabaseConfig, OktaConfig};
    let mut rules = Policy::default_rules();
    for p in ["users.read", "users.suspend"] {
        if let Some(rule) = rules.get_mut(p) {
            rule.clients = vec!["0oaSupport".into()];
        }
    }
    let policy = Policy::compile(Some(rules), &crate::config::default_scopes()).unwrap();
    let db = crate::db::Database::connect(&DatabaseConfig {
        url: "sqlite::memory:".into(),
        max_connections: 1,
    })
    .await
    .unwrap();
    let okta = OktaClient::new(
        crate::startup::http_client().unwrap(),
        &OktaConfig {
            org_url: url::Url::parse("http://127.0.0.1:9").unwrap(),
            api_token: Some(SecretString::from("test")),
            oauth: None,
            timeout_seconds: 1,
            max_retry_wait_seconds: 0,
            budget: Default::default(),
        },
    )
    .unwrap();
    Ops::new(
        Arc::new(okta),
        AuditStore::new(db),
        Arc::new(policy),
        users,
        MfaConfig::default(),
        None,
    )
}
