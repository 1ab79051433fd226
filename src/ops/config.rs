//! The rules the operations layer applies, as configured: which groups new users may join,
//! which populations are protected, which profile attributes and group memberships agents and
//! services may change, what a reason and a ticket must look like, which factors may be enrolled.

use serde::Deserialize;

/// `[users]`: rules for changes to users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    /// Groups (by name) an agent may add a new user to.
    #[serde(default = "default_create_groups")]
    pub create_groups: Vec<String>,
    /// Members of these groups may only be changed with the `users.protected` permission.
    #[serde(default = "default_protected_groups")]
    pub protected_groups: Vec<String>,
    /// Shortest accepted reason for a change, in characters.
    #[serde(default = "default_reason_min")]
    pub reason_min_length: usize,
    /// Pattern a ticket reference must match (empty: any text).
    #[serde(default = "default_ticket_pattern")]
    pub ticket_pattern: String,
    /// Whether a ticket reference is required.
    #[serde(default)]
    pub ticket_required: bool,
    /// Users per search page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Okta profile attributes (by Okta name) that agents and services may edit.
    #[serde(default = "default_editable_attributes")]
    pub editable_attributes: Vec<String>,
    /// Groups (by name) whose membership agents and services may add users to or remove them
    /// from. Protected groups and groups the policy grants permissions to are never changed,
    /// even when listed.
    #[serde(default = "default_create_groups")]
    pub membership_groups: Vec<String>,
}

/// Profile attributes the portal knows how to validate; `editable_attributes` must be among them.
pub const EDITABLE_ATTRIBUTES: [&str; 9] = [
    "firstName",
    "lastName",
    "email",
    "secondEmail",
    "mobilePhone",
    "primaryPhone",
    "nickName",
    "title",
    "department",
];

fn default_editable_attributes() -> Vec<String> {
    [
        "firstName",
        "lastName",
        "mobilePhone",
        "secondEmail",
        "nickName",
        "title",
        "department",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl UsersConfig {
    /// `ticket_pattern`, compiled (`None` when empty).
    pub fn compiled_ticket_pattern(&self) -> Result<Option<regex::Regex>, String> {
        if self.ticket_pattern.is_empty() {
            return Ok(None);
        }
        regex::Regex::new(&self.ticket_pattern)
            .map(Some)
            .map_err(|e| format!("users.ticket_pattern is not a valid pattern: {e}"))
    }

    /// What is wrong with these rules, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for a in &self.editable_attributes {
            if !EDITABLE_ATTRIBUTES.contains(&a.as_str()) {
                problems.push(format!(
                    "users.editable_attributes: \"{a}\" is not an attribute the portal can edit (known: {})",
                    EDITABLE_ATTRIBUTES.join(", ")
                ));
            }
        }
        for g in &self.membership_groups {
            if self.protected_groups.contains(g) {
                problems.push(format!(
                    "users.membership_groups: \"{g}\" is a protected group; its membership cannot be changed in the portal"
                ));
            }
        }
        if self.page_size == 0 || self.page_size > 200 {
            problems.push("users.page_size must be between 1 and 200".to_string());
        }
        problems
    }
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            create_groups: default_create_groups(),
            protected_groups: default_protected_groups(),
            reason_min_length: default_reason_min(),
            ticket_pattern: default_ticket_pattern(),
            ticket_required: false,
            page_size: default_page_size(),
            editable_attributes: default_editable_attributes(),
            membership_groups: default_create_groups(),
        }
    }
}

fn default_create_groups() -> Vec<String> {
    vec![
        "Support Tier 1".into(),
        "Engineering".into(),
        "Sales".into(),
    ]
}
fn default_protected_groups() -> Vec<String> {
    vec!["Portal-Admins".into(), "Executives".into()]
}
fn default_reason_min() -> usize {
    10
}
fn default_ticket_pattern() -> String {
    r"^[A-Z][A-Z0-9]+-\d+$".into()
}
fn default_page_size() -> u32 {
    20
}

/// Which factors agents may enroll for users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaConfig {
    /// Any of `google_authenticator`, `okta_verify_totp`, `sms`, `call`, `email`.
    #[serde(default = "default_enroll_types")]
    pub enroll_types: Vec<String>,
    /// The issuer shown in authenticator apps for TOTP enrollments.
    #[serde(default = "default_totp_issuer")]
    pub totp_issuer: String,
}

impl MfaConfig {
    /// What is wrong with this section, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let unknown = self
            .enroll_types
            .iter()
            .filter(|t| !ENROLL_TYPES.contains(&t.as_str()));
        unknown
            .map(|t| {
                format!(
                    "mfa.enroll_types: unknown factor type \"{t}\" (known: {})",
                    ENROLL_TYPES.join(", ")
                )
            })
            .collect()
    }
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            enroll_types: default_enroll_types(),
            totp_issuer: default_totp_issuer(),
        }
    }
}

pub const ENROLL_TYPES: [&str; 5] = [
    "google_authenticator",
    "okta_verify_totp",
    "sms",
    "call",
    "email",
];

fn default_enroll_types() -> Vec<String> {
    ENROLL_TYPES.iter().map(|s| s.to_string()).collect()
}
fn default_totp_issuer() -> String {
    "Okta".into()
}
