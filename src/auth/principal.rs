//! `Principal`: who is asking, whichever front door they came through — a person signed in to
//! the portal (browser session) or a service client (bearer token from the authorization
//! server). Operations in `ops/` take a `&Principal` and never look at sessions or headers.

use std::collections::BTreeSet;

use super::policy::{Decision, Permission, Policy};
use super::session::AgentSession;
use crate::audit::{Actor, RequestMeta};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person signed in through OpenID Connect.
    Agent,
    /// A service calling the API with its own OAuth client (client_credentials).
    Service,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The provider's subject: the Okta user id of a person, the client id of a service.
    pub subject: String,
    /// A person's login; none for services.
    pub login: Option<String>,
    /// A name for people to read: the person's name, or the service's registered name.
    pub name: String,
    /// The OAuth client a service came through (`cid`); none for people.
    pub client_id: Option<String>,
    pub scopes: BTreeSet<String>,
    /// A person's groups; always empty for services.
    pub groups: BTreeSet<String>,
    /// Unix seconds of the person's last authentication at the provider, when known.
    pub auth_time: Option<i64>,
    /// The permissions the policy grants this principal, decided once per request.
    pub granted: BTreeSet<Permission>,
    pub meta: RequestMeta,
}

impl Principal {
    pub fn agent(session: &AgentSession, policy: &Policy, meta: RequestMeta) -> Principal {
        Principal {
            kind: PrincipalKind::Agent,
            subject: session.sub.clone(),
            login: Some(session.login.clone()),
            name: session.name.clone(),
            client_id: None,
            granted: policy.granted(&session.scopes, &session.groups),
            scopes: session.scopes.clone(),
            groups: session.groups.clone(),
            auth_time: session.auth_time,
            meta,
        }
    }

    /// A service client. `name` comes from the client registry (or the client id).
    pub fn service(
        client_id: &str,
        name: &str,
        scopes: BTreeSet<String>,
        policy: &Policy,
        meta: RequestMeta,
    ) -> Principal {
        Principal {
            kind: PrincipalKind::Service,
            subject: client_id.to_string(),
            login: None,
            name: name.to_string(),
            client_id: Some(client_id.to_string()),
            granted: policy.granted_client(&scopes, client_id),
            scopes,
            groups: BTreeSet::new(),
            auth_time: None,
            meta,
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.granted.contains(&permission)
    }

    /// Why the policy grants or refuses `permission` to this principal.
    pub fn decide(&self, policy: &Policy, permission: Permission) -> Decision {
        match self.kind {
            PrincipalKind::Agent => policy.decide(permission, &self.scopes, &self.groups),
            PrincipalKind::Service => policy.decide_client(permission, &self.scopes, &self.subject),
        }
    }

    pub fn is_service(&self) -> bool {
        self.kind == PrincipalKind::Service
    }

    /// Whether the Okta user (`id`, `login`) is this principal's own account.
    pub fn is_self(&self, id: &str, login: &str) -> bool {
        self.kind == PrincipalKind::Agent
            && (self.subject == id
                || self
                    .login
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(login)))
    }

    pub fn actor(&self) -> Actor {
        Actor {
            sub: Some(self.subject.clone()),
            login: self.login.clone(),
            name: Some(self.name.clone()),
            client_id: self.client_id.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! Principals for unit tests of the policy and the operation guards.
    use super::*;

    pub fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    pub fn meta() -> RequestMeta {
        RequestMeta {
            request_id: "req-test".into(),
            client_ip: Some("127.0.0.1".into()),
            user_agent: Some("unit-test".into()),
        }
    }

    /// A person with the given groups and scopes, id `00uAgent`, login `agent@example.com`.
    pub fn agent(policy: &Policy, groups: &[&str], scopes: &[&str]) -> Principal {
        let session = AgentSession {
            sub: "00uAgent".into(),
            login: "agent@example.com".into(),
            name: "Test Agent".into(),
            email: Some("agent@example.com".into()),
            groups: set(groups),
            scopes: set(scopes),
            tokens: crate::auth::session::StoredTokens {
                access_token: "x".to_string().into(),
                refresh_token: None,
                id_token: "x".to_string().into(),
            },
            access_expires_at: 0,
            signed_in_at: 0,
            auth_time: Some(0),
        };
        Principal::agent(&session, policy, meta())
    }

    pub fn service(policy: &Policy, client_id: &str, scopes: &[&str]) -> Principal {
        Principal::service(client_id, "Test service", set(scopes), policy, meta())
    }
}
