//! `[api]`: which tokens the service API accepts, which clients it knows, and the demo's
//! clients and rules. Read by the configuration; imports nothing above the policy.

use serde::Deserialize;
use url::Url;

use crate::auth::policy::Policy;

/// The default audience of the API's access tokens.
pub const DEFAULT_AUDIENCE: &str = "api://admin-portal";
/// The default `policy.scope_pattern`.
pub const DEFAULT_SCOPE_PATTERN: &str = r"^admin\.[a-z]+\.[a-z_]+$";

/// `[api]`: which tokens the API accepts and which clients it knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The authorization server that issues the clients' tokens (default: `oidc.issuer`,
    /// which then shares its JWKS cache with the sign-in).
    #[serde(default)]
    pub issuer: Option<Url>,
    #[serde(default = "default_audience")]
    pub audience: String,
    /// The client registry. Empty: any client the policy names may call (its id is its name);
    /// otherwise unregistered clients are refused (403 `unknown_client`).
    #[serde(default)]
    pub clients: Vec<ApiClient>,
    /// Groups self-registered users are put in.
    #[serde(default = "default_registration_groups")]
    pub registration_groups: Vec<String>,
}

fn default_audience() -> String {
    DEFAULT_AUDIENCE.to_string()
}

fn default_registration_groups() -> Vec<String> {
    vec!["Customers".to_string()]
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            issuer: None,
            audience: default_audience(),
            clients: Vec::new(),
            registration_groups: default_registration_groups(),
        }
    }
}

/// A registered client service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClient {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rpm() -> u32 {
    600
}

fn default_burst() -> u32 {
    60
}

impl ApiClient {
    /// A client that is not in the (empty) registry: default limits, named by its id.
    pub fn unregistered(id: &str) -> ApiClient {
        ApiClient {
            id: id.to_string(),
            name: id.to_string(),
            description: String::new(),
            requests_per_minute: default_rpm(),
            burst: default_burst(),
        }
    }
}

impl ApiConfig {
    pub fn client(&self, id: &str) -> Option<&ApiClient> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// Every problem with `[api]` and with `policy.scope_pattern`, in plain words.
    pub fn problems(&self, policy: &Policy, scope_pattern: Option<&str>) -> Vec<String> {
        let mut problems = Vec::new();
        if self.audience.trim().is_empty() {
            problems.push("api.audience is empty".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clients {
            if c.id.trim().is_empty() || !seen.insert(c.id.as_str()) {
                problems.push(format!(
                    "api.clients: client id \"{}\" is empty or listed twice",
                    c.id
                ));
            }
            if c.requests_per_minute == 0 || c.burst == 0 {
                problems.push(format!(
                    "api.clients: \"{}\" needs requests_per_minute and burst of at least 1",
                    c.id
                ));
            }
        }
        if !self.clients.is_empty() {
            for id in policy.clients() {
                if self.client(&id).is_none() {
                    problems.push(format!("policy: client \"{id}\" is not in api.clients"));
                }
            }
        }
        problems.extend(scope_problems(policy, scope_pattern));
        problems
    }
}

/// `policy.scope_pattern`: every scope the policy needs must match it.
pub fn scope_problems(policy: &Policy, pattern: Option<&str>) -> Vec<String> {
    let pattern = pattern.unwrap_or(DEFAULT_SCOPE_PATTERN);
    let re = match regex::Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => return vec![format!("policy.scope_pattern is not a valid pattern: {e}")],
    };
    policy
        .scopes()
        .into_iter()
        .filter(|s| !re.is_match(s))
        .map(|s| format!("policy: scope \"{s}\" does not follow policy.scope_pattern {pattern}"))
        .collect()
}

/// The demo's client services (the simulator registers the same ids).
pub const SUPPORT_APP: &str = "0oaSupportAppClient1";
pub const CUSTOMER_APP: &str = "0oaCustomerAppClient";

/// `[api]` for the demo: the two client services in the registry.
pub fn demo_config() -> ApiConfig {
    let client = |id: &str, name: &str, description: &str| ApiClient {
        id: id.to_string(),
        name: name.to_string(),
        description: description.to_string(),
        requests_per_minute: default_rpm(),
        burst: default_burst(),
    };
    ApiConfig {
        clients: vec![
            client(
                SUPPORT_APP,
                "Support app",
                "The internal customer-support app",
            ),
            client(
                CUSTOMER_APP,
                "Customer app",
                "The internet-facing customer app (registration edge)",
            ),
        ],
        ..ApiConfig::default()
    }
}

/// The built-in policy plus the demo clients: the support app may do what its scopes allow
/// except delete and the audit trail; the customer app may only register and recover.
pub fn demo_rules() -> std::collections::BTreeMap<String, crate::auth::policy::RuleSpec> {
    use crate::auth::policy::{Permission::*, RuleSpec};
    let mut rules = Policy::default_rules();
    let support = [
        UsersRead,
        UsersCreate,
        UsersDeactivate,
        UsersReactivate,
        UsersSuspend,
        UsersUnsuspend,
        UsersUnlock,
        UsersResetPassword,
        UsersExpirePassword,
        UsersProfile,
        UsersSessions,
        UsersGroups,
        FactorsRead,
        FactorsEnroll,
        FactorsReset,
    ];
    for p in support {
        if let Some(rule) = rules.get_mut(p.as_str()) {
            rule.clients.push(SUPPORT_APP.to_string());
        }
    }
    for (p, scope) in [
        (UsersRegister, "admin.users.register"),
        (UsersRecover, "admin.users.recover"),
    ] {
        let rule = RuleSpec {
            scopes: vec![scope.to_string()],
            groups: vec![],
            clients: vec![CUSTOMER_APP.to_string()],
        };
        rules.insert(p.as_str().to_string(), rule);
    }
    rules
}
