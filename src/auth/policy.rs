//! Permissions and the policy that grants them: the one source of truth for authorization.
//!
//! A permission is granted to a **person** when their token carries **every** scope the rule
//! lists AND they belong to **at least one** of the rule's `groups`; to a **service client**
//! when its token carries every scope AND its client id is listed in the rule's `clients`.
//! A rule may list groups, clients or both. Anything not in the policy is denied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

macro_rules! permissions {
    ($($variant:ident => $name:literal, $label:literal;)*) => {
        /// One portal operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $($variant,)* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What the permission lets an agent do, in plain words.
            pub fn label(self) -> &'static str {
                match self { $(Permission::$variant => $label,)* }
            }

            pub fn parse(name: &str) -> Option<Permission> {
                match name { $($name => Some(Permission::$variant),)* _ => None }
            }
        }

        /// One zero-sized marker type per permission, for `Require<perm::UsersRead>`.
        pub mod perm {
            $(
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;
                impl super::PermissionMarker for $variant {
                    const PERMISSION: super::Permission = super::Permission::$variant;
                }
            )*
        }
    };
}

permissions! {
    UsersRead => "users.read", "Search and view users";
    UsersCreate => "users.create", "Create users";
    UsersDeactivate => "users.deactivate", "Deactivate users";
    UsersReactivate => "users.reactivate", "Activate and reactivate users";
    UsersSuspend => "users.suspend", "Suspend users";
    UsersUnsuspend => "users.unsuspend", "Unsuspend users";
    UsersUnlock => "users.unlock", "Unlock users";
    UsersResetPassword => "users.reset_password", "Reset passwords";
    UsersExpirePassword => "users.expire_password", "Expire passwords";
    UsersDelete => "users.delete", "Delete deactivated users";
    UsersProtected => "users.protected", "Change protected users";
    UsersProfile => "users.profile", "Edit user profiles";
    UsersSessions => "users.sessions", "Sign users out everywhere";
    UsersGroups => "users.groups", "Change group memberships";
    UsersRegister => "users.register", "Register new users (self-registration)";
    UsersRecover => "users.recover", "Start password recovery (forgot password)";
    FactorsRead => "factors.read", "View MFA factors";
    FactorsEnroll => "factors.enroll", "Enroll MFA factors";
    FactorsReset => "factors.reset", "Reset MFA factors";
    AuditRead => "audit.read", "Review activity";
    AuditExport => "audit.export", "Export activity";
    LimitsLift => "limits.lift", "Lift an agent's velocity caps for the rest of the day";
}

/// Links a marker type to its permission.
pub trait PermissionMarker: Send + Sync + 'static {
    const PERMISSION: Permission;
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule as written in configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// All of these scopes must be in the token.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A person must be in at least one of these groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A service client must be one of these client ids.
    #[serde(default)]
    pub clients: Vec<String>,
}

/// The authorization policy: either a separate TOML file or inline rules; the built-in
/// default policy applies when neither is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, RuleSpec>>,
    /// Every scope a rule needs must match this (default `^admin\.[a-z]+\.[a-z_]+$`,
    /// checked by `crate::api::scope_problems`).
    #[serde(default)]
    pub scope_pattern: Option<String>,
}

impl PolicyConfig {
    /// Compiles the configured (or built-in) policy against the scopes requested at sign-in.
    pub fn compile(&self, known_scopes: &[String]) -> Result<Policy, Vec<String>> {
        let source = self.source().map_err(|e| vec![e])?;
        Policy::compile(source, known_scopes)
            .map_err(|errs| errs.into_iter().map(|e| format!("policy: {e}")).collect())
    }

    fn source(&self) -> Result<Option<BTreeMap<String, RuleSpec>>, String> {
        match (&self.file, &self.permissions) {
            (Some(_), Some(_)) => {
                Err("policy: give either policy.file or policy.permissions, not both".into())
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("policy: cannot read policy file {}: {e}", path.display())
                })?;
                let file: PolicyFile = toml_from_str(&text).map_err(|e| {
                    format!("policy: policy file {} is not valid: {e}", path.display())
                })?;
                Ok(Some(file.permissions))
            }
            (None, Some(inline)) => Ok(Some(inline.clone())),
            (None, None) => Ok(None),
        }
    }
}

fn toml_from_str(text: &str) -> Result<PolicyFile, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<PolicyFile>())
        .map_err(|e| e.to_string())
}

/// A standalone policy file: `[permissions."users.read"] scopes = [...] groups = [...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub permissions: BTreeMap<String, RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub clients: Vec<String>,
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: BTreeMap<Permission, Rule>,
}

pub const AGENTS: &str = "Portal-Agents";
pub const MANAGERS: &str = "Portal-Managers";
pub const ADMINS: &str = "Portal-Admins";

/// Why a permission was granted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub permission: Permission,
    pub allowed: bool,
    /// Scopes the rule needs that the token lacks.
    pub missing_scopes: Vec<String>,
    /// Set when the agent is in none of the accepted groups.
    pub missing_group: bool,
    /// Set when a service client is not among the rule's clients.
    pub missing_client: bool,
    /// The rule, if the policy has one for this permission.
    pub rule: Option<Rule>,
}

impl From<Decision> for crate::error::Denial {
    fn from(d: Decision) -> crate::error::Denial {
        crate::error::Denial {
            permission: d.permission.to_string(),
            label: d.permission.label().to_lowercase(),
            requirement: d.requirement(),
            explanation: d.explanation(),
            missing_scopes: d.missing_scopes,
        }
    }
}

impl Decision {
    /// A plain sentence explaining the decision.
    pub fn explanation(&self) -> String {
        let Some(rule) = &self.rule else {
            return "The policy does not grant this permission to anyone.".to_string();
        };
        if self.allowed {
            return format!(
                "Granted: your token has {} and you are in {}.",
                list_or_none(&rule.scopes),
                one_of(&rule.groups)
            );
        }
        let mut parts = Vec::new();
        if !self.missing_scopes.is_empty() {
            parts.push(format!(
                "your token lacks the scope{} {}",
                if self.missing_scopes.len() > 1 {
                    "s"
                } else {
                    ""
                },
                self.missing_scopes.join(", ")
            ));
        }
        if self.missing_group {
            parts.push(format!("you are not in {}", one_of(&rule.groups)));
        }
        if self.missing_client {
            parts.push(match rule.clients.len() {
                0 => "the rule grants it to no service client".to_string(),
                _ => format!("this client is not one of {}", rule.clients.join(", ")),
            });
        }
        format!("Denied: {}.", parts.join(" and "))
    }

    /// What the rule requires, in one line.
    pub fn requirement(&self) -> String {
        match &self.rule {
            None => "not granted by the policy".to_string(),
            Some(rule) if rule.clients.is_empty() => format!(
                "scopes {} and membership of {}",
                list_or_none(&rule.scopes),
                one_of(&rule.groups)
            ),
            Some(rule) => format!(
                "scopes {} and membership of {}, or for services one of the clients {}",
                list_or_none(&rule.scopes),
                one_of(&rule.groups),
                rule.clients.join(", ")
            ),
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn one_of(groups: &[String]) -> String {
    match groups.len() {
        0 => "no group (nobody qualifies)".to_string(),
        1 => groups[0].clone(),
        _ => format!("one of {}", groups.join(", ")),
    }
}

impl Policy {
    /// The built-in policy: it mirrors the demo authorization server's access rules.
    pub fn default_rules() -> BTreeMap<String, RuleSpec> {
        use Permission::*;
        let agents = vec![AGENTS.to_string(), MANAGERS.to_string()];
        let managers = vec![MANAGERS.to_string()];
        let rule = |scope: &str, groups: &Vec<String>| RuleSpec {
            scopes: vec![scope.to_string()],
            groups: groups.clone(),
            clients: Vec::new(),
        };
        let mut m = BTreeMap::new();
        for (p, scope, groups) in [
            (UsersRead, "admin.users.read", &agents),
            (UsersCreate, "admin.users.create", &agents),
            (UsersDeactivate, "admin.users.lifecycle", &agents),
            (UsersReactivate, "admin.users.lifecycle", &agents),
            (UsersSuspend, "admin.users.lifecycle", &agents),
            (UsersUnsuspend, "admin.users.lifecycle", &agents),
            (UsersUnlock, "admin.users.lifecycle", &agents),
            (UsersResetPassword, "admin.users.lifecycle", &agents),
            (UsersExpirePassword, "admin.users.lifecycle", &agents),
            (UsersDelete, "admin.users.delete", &managers),
            (UsersProfile, "admin.users.profile", &agents),
            (UsersSessions, "admin.users.sessions", &agents),
            (UsersGroups, "admin.users.groups", &agents),
            (FactorsRead, "admin.factors.read", &agents),
            (FactorsEnroll, "admin.factors.manage", &agents),
            (FactorsReset, "admin.factors.manage", &agents),
            (AuditRead, "admin.audit.read", &managers),
            (AuditExport, "admin.audit.read", &managers),
            (LimitsLift, "admin.audit.read", &managers),
        ] {
            m.insert(p.as_str().to_string(), rule(scope, groups));
        }
        m.insert(
            UsersProtected.as_str().to_string(),
            rule("admin.users.lifecycle", &vec![ADMINS.to_string()]),
        );
        m
    }

    /// Compiles rules, checking every permission name and every scope. Scopes must be among
    /// those the portal requests at sign-in (`known_scopes`), otherwise no token could ever
    /// carry them.
    pub fn compile(
        source: Option<BTreeMap<String, RuleSpec>>,
        known_scopes: &[String],
    ) -> Result<Policy, Vec<String>> {
        let source = source.unwrap_or_else(Self::default_rules);
        let mut errors = Vec::new();
        let mut rules = BTreeMap::new();
        for (name, spec) in source {
            let Some(permission) = Permission::parse(&name) else {
                let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                errors.push(format!(
                    "unknown permission \"{name}\" (known: {})",
                    known.join(", ")
                ));
                continue;
            };
            // People's scopes come from the sign-in request; a rule for clients only needs
            // scopes the authorization server grants to clients.
            for scope in spec.scopes.iter().filter(|_| !spec.groups.is_empty()) {
                if !known_scopes.iter().any(|k| k == scope) {
                    errors.push(format!(
                        "permission \"{name}\" needs scope \"{scope}\", which is not in oidc.scopes, so no token can carry it"
                    ));
                }
            }
            if spec.groups.is_empty() && spec.clients.is_empty() {
                errors.push(format!(
                    "permission \"{name}\" lists no groups and no clients; list at least one (remove the rule to deny it)"
                ));
            }
            rules.insert(
                permission,
                Rule {
                    scopes: spec.scopes,
                    groups: spec.groups,
                    clients: spec.clients,
                },
            );
        }
        if errors.is_empty() {
            Ok(Policy { rules })
        } else {
            Err(errors)
        }
    }

    pub fn decide(
        &self,
        permission: Permission,
        scopes: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Decision {
        self.decide_holder(permission, scopes, Holder::Person(groups))
    }

    /// The decision for a service client (`cid` from its token).
    pub fn decide_client(
        &self,
        permission: Permission,
        scopes: &BTreeSet<String>,
        client_id: &str,
    ) -> Decision {
        self.decide_holder(permission, scopes, Holder::Client(client_id))
    }

    fn decide_holder(
        &self,
        permission: Permission,
        scopes: &BTreeSet<String>,
        holder: Holder<'_>,
    ) -> Decision {
        let Some(rule) = self.rules.get(&permission) else {
            return Decision {
                permission,
                allowed: false,
                missing_scopes: Vec::new(),
                missing_group: false,
                missing_client: false,
                rule: None,
            };
        };
        let missing_scopes: Vec<String> = rule
            .scopes
            .iter()
            .filter(|s| !scopes.contains(*s))
            .cloned()
            .collect();
        let (missing_group, missing_client) = match holder {
            Holder::Person(groups) => (!rule.groups.iter().any(|g| groups.contains(g)), false),
            Holder::Client(id) => (false, !rule.clients.iter().any(|c| c == id)),
        };
        Decision {
            permission,
            allowed: missing_scopes.is_empty() && !missing_group && !missing_client,
            missing_scopes,
            missing_group,
            missing_client,
            rule: Some(rule.clone()),
        }
    }

    /// Every client id any rule names (checked against the client registry at start-up).
    pub fn clients(&self) -> BTreeSet<String> {
        self.rules
            .values()
            .flat_map(|r| r.clients.iter().cloned())
            .collect()
    }

    /// Every scope any rule needs.
    pub fn scopes(&self) -> BTreeSet<String> {
        self.rules
            .values()
            .flat_map(|r| r.scopes.iter().cloned())
            .collect()
    }

    /// The rule for a permission, if the policy has one.
    pub fn rule(&self, permission: Permission) -> Option<&Rule> {
        self.rules.get(&permission)
    }

    /// Every permission with its decision, in declaration order.
    pub fn table(&self, scopes: &BTreeSet<String>, groups: &BTreeSet<String>) -> Vec<Decision> {
        Permission::ALL
            .iter()
            .map(|p| self.decide(*p, scopes, groups))
            .collect()
    }

    /// Every group that any rule grants something to: the portal's own privileged users.
    pub fn privileged_groups(&self) -> BTreeSet<String> {
        self.rules
            .values()
            .flat_map(|r| r.groups.iter().cloned())
            .collect()
    }

    /// The set of permissions granted to a person.
    pub fn granted(
        &self,
        scopes: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> BTreeSet<Permission> {
        self.table(scopes, groups)
            .into_iter()
            .filter(|d| d.allowed)
            .map(|d| d.permission)
            .collect()
    }

    /// The set of permissions granted to a service client.
    pub fn granted_client(
        &self,
        scopes: &BTreeSet<String>,
        client_id: &str,
    ) -> BTreeSet<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.decide_client(*p, scopes, client_id).allowed)
            .collect()
    }
}

/// Who a decision is for: a person (by groups) or a service client (by client id).
#[derive(Clone, Copy)]
enum Holder<'a> {
    Person(&'a BTreeSet<String>),
    Client(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn default_policy() -> Policy {
        let scopes: Vec<String> = crate::auth::oidc::default_scopes();
        Policy::compile(None, &scopes).expect("default policy compiles")
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Permission::parse("users.fly"), None);
    }

    #[test]
    fn needs_all_scopes_and_one_group() {
        let policy = default_policy();
        let agent_scopes = set(&["admin.users.read", "admin.users.lifecycle"]);
        let d = policy.decide(Permission::UsersRead, &agent_scopes, &set(&[AGENTS]));
        assert!(d.allowed);
        let d = policy.decide(Permission::UsersRead, &agent_scopes, &set(&["Everyone"]));
        assert!(!d.allowed);
        assert!(d.missing_group);
        assert!(
            d.explanation()
                .contains("you are not in one of Portal-Agents, Portal-Managers")
        );
        let d = policy.decide(Permission::UsersDelete, &agent_scopes, &set(&[MANAGERS]));
        assert!(!d.allowed);
        assert_eq!(d.missing_scopes, vec!["admin.users.delete".to_string()]);
        assert_eq!(
            d.explanation(),
            "Denied: your token lacks the scope admin.users.delete."
        );
    }

    #[test]
    fn delete_and_audit_are_for_managers_only() {
        let policy = default_policy();
        let all = set(&["admin.users.delete", "admin.audit.read"]);
        for p in [
            Permission::UsersDelete,
            Permission::AuditRead,
            Permission::AuditExport,
        ] {
            assert!(!policy.decide(p, &all, &set(&[AGENTS])).allowed, "{p}");
            assert!(policy.decide(p, &all, &set(&[MANAGERS])).allowed, "{p}");
        }
    }

    #[test]
    fn permission_missing_from_policy_is_denied() {
        let mut rules = BTreeMap::new();
        rules.insert(
            "users.read".to_string(),
            RuleSpec {
                scopes: vec!["admin.users.read".into()],
                groups: vec![AGENTS.into()],
                clients: vec![],
            },
        );
        let policy = Policy::compile(Some(rules), &["admin.users.read".to_string()]).unwrap();
        let d = policy.decide(
            Permission::UsersCreate,
            &set(&["admin.users.read"]),
            &set(&[AGENTS]),
        );
        assert!(!d.allowed);
        assert!(d.rule.is_none());
        assert_eq!(
            d.explanation(),
            "The policy does not grant this permission to anyone."
        );
    }

    #[test]
    fn rule_without_groups_is_rejected() {
        let mut rules = BTreeMap::new();
        rules.insert(
            "users.read".to_string(),
            RuleSpec {
                scopes: vec![],
                groups: vec![],
                clients: vec![],
            },
        );
        let errs = Policy::compile(Some(rules), &[]).unwrap_err();
        assert!(
            errs[0].contains("lists no groups and no clients"),
            "{errs:?}"
        );
    }

    fn client_policy() -> Policy {
        let mut rules = Policy::default_rules();
        rules.insert(
            "users.read".to_string(),
            RuleSpec {
                scopes: vec!["admin.users.read".into()],
                groups: vec![AGENTS.into()],
                clients: vec!["0oaSupport".into()],
            },
        );
        rules.insert(
            "users.create".to_string(),
            RuleSpec {
                scopes: vec!["admin.users.create".into()],
                groups: vec![],
                clients: vec!["0oaSupport".into()],
            },
        );
        Policy::compile(Some(rules), &crate::auth::oidc::default_scopes()).unwrap()
    }

    #[test]
    fn a_client_needs_all_scopes_and_to_be_listed() {
        use crate::auth::principal::fake;
        let policy = client_policy();
        let support = fake::service(
            &policy,
            "0oaSupport",
            &["admin.users.read", "admin.users.create"],
        );
        assert!(support.can(Permission::UsersRead));
        assert!(support.can(Permission::UsersCreate));
        // Listed under groups only: a client gets nothing, whatever its scopes.
        assert!(!support.can(Permission::UsersUnlock));
        // Extra scopes for an unlisted client give nothing.
        let rogue = fake::service(
            &policy,
            "0oaRogue",
            &["admin.users.read", "admin.users.create"],
        );
        assert!(rogue.granted.is_empty(), "{:?}", rogue.granted);
        let d = rogue.decide(&policy, Permission::UsersRead);
        assert!(d.missing_client && !d.missing_group);
        assert_eq!(
            d.explanation(),
            "Denied: this client is not one of 0oaSupport."
        );
        // Listed, but without the scope.
        let narrow = fake::service(&policy, "0oaSupport", &["admin.users.read"]);
        assert!(!narrow.can(Permission::UsersCreate));
        assert_eq!(
            narrow
                .decide(&policy, Permission::UsersCreate)
                .missing_scopes,
            vec!["admin.users.create".to_string()]
        );
    }

    #[test]
    fn a_clients_only_rule_grants_people_nothing() {
        use crate::auth::principal::fake;
        let policy = client_policy();
        let agent = fake::agent(
            &policy,
            &[AGENTS, MANAGERS, ADMINS],
            &["admin.users.create", "admin.users.read"],
        );
        assert!(!agent.can(Permission::UsersCreate));
        assert!(agent.can(Permission::UsersRead));
        // A person is never matched by client id, even one equal to their subject.
        let d = policy.decide_client(
            Permission::UsersRead,
            &set(&["admin.users.read"]),
            "00uAgent",
        );
        assert!(!d.allowed);
    }

    #[test]
    fn forbidden_names_the_permission_and_requirement() {
        let policy = Policy::compile(None, &crate::auth::oidc::default_scopes()).unwrap();
        let decision = policy.decide(Permission::AuditRead, &BTreeSet::new(), &BTreeSet::new());
        let report = crate::error::AppError::Forbidden(Box::new(decision.into())).report();
        let (perm, needs, why) = report.permission.unwrap();
        assert_eq!(perm, "audit.read");
        assert_eq!(
            needs,
            "scopes admin.audit.read and membership of Portal-Managers"
        );
        assert!(
            why.starts_with("Denied: your token lacks the scope admin.audit.read"),
            "{why}"
        );
    }
}
