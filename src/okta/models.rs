//! Typed models of the Okta objects the portal uses. Unknown fields are ignored, nulls and
//! missing fields tolerated, custom profile attributes kept in a map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Okta user statuses (OKTA-FACTS.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    LockedOut,
    PasswordExpired,
    Suspended,
    Deprovisioned,
    #[serde(other)]
    Unknown,
}

impl UserStatus {
    pub const ALL: [UserStatus; 8] = [
        UserStatus::Staged,
        UserStatus::Provisioned,
        UserStatus::Active,
        UserStatus::Recovery,
        UserStatus::LockedOut,
        UserStatus::PasswordExpired,
        UserStatus::Suspended,
        UserStatus::Deprovisioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Staged => "STAGED",
            UserStatus::Provisioned => "PROVISIONED",
            UserStatus::Active => "ACTIVE",
            UserStatus::Recovery => "RECOVERY",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::PasswordExpired => "PASSWORD_EXPIRED",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
            UserStatus::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        UserStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Staged => "Staged",
            UserStatus::Provisioned => "Pending activation",
            UserStatus::Active => "Active",
            UserStatus::Recovery => "Password reset",
            UserStatus::LockedOut => "Locked out",
            UserStatus::PasswordExpired => "Password expired",
            UserStatus::Suspended => "Suspended",
            UserStatus::Deprovisioned => "Deactivated",
            UserStatus::Unknown => "Unknown",
        }
    }

    /// What the status means for the person, in plain language.
    pub fn explanation(self) -> &'static str {
        match self {
            UserStatus::Staged => {
                "Created but not activated: the person cannot sign in and has received nothing yet."
            }
            UserStatus::Provisioned => {
                "Activated but the person has not finished setting up their account (no password yet)."
            }
            UserStatus::Active => "Can sign in normally.",
            UserStatus::Recovery => {
                "A password reset is in progress: the person must finish it before signing in."
            }
            UserStatus::LockedOut => {
                "Too many failed sign-ins: the person cannot sign in until unlocked or the lockout expires."
            }
            UserStatus::PasswordExpired => {
                "The password has expired: the person must choose a new one at next sign-in."
            }
            UserStatus::Suspended => {
                "Temporarily blocked from signing in; apps and groups are kept."
            }
            UserStatus::Deprovisioned => {
                "Deactivated: cannot sign in, app access removed. Can be reactivated or deleted for good."
            }
            UserStatus::Unknown => "A status this portal does not know.",
        }
    }

    /// CSS badge class.
    pub fn tone(self) -> &'static str {
        match self {
            UserStatus::Active => "ok",
            UserStatus::Staged
            | UserStatus::Provisioned
            | UserStatus::Recovery
            | UserStatus::PasswordExpired => "warn",
            UserStatus::LockedOut | UserStatus::Suspended | UserStatus::Deprovisioned => "bad",
            UserStatus::Unknown => "neutral",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub second_email: Option<String>,
    /// Every other attribute, custom ones included.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub status: UserStatus,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub activated: Option<String>,
    #[serde(default)]
    pub status_changed: Option<String>,
    #[serde(default)]
    pub last_login: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub password_changed: Option<String>,
    #[serde(default)]
    pub transitioning_to_status: Option<String>,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub credentials: Option<Credentials>,
    #[serde(rename = "_links", default)]
    pub links: BTreeMap<String, Value>,
}

/// What Okta says about a user's credentials (never a secret: only which kinds exist).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// Present (as `{}`) when the user has a password.
    #[serde(default)]
    pub password: Option<Value>,
}

impl User {
    /// Whether the user has a password in Okta (activation then makes them ACTIVE).
    pub fn has_password(&self) -> bool {
        self.credentials
            .as_ref()
            .is_some_and(|c| c.password.is_some())
    }

    pub fn display_name(&self) -> String {
        let first = self.profile.first_name.as_deref().unwrap_or("").trim();
        let last = self.profile.last_name.as_deref().unwrap_or("").trim();
        let name = format!("{first} {last}").trim().to_string();
        if name.is_empty() {
            self.profile.login.clone()
        } else {
            name
        }
    }

    /// Whether Okta offers the lifecycle operation `rel` (from `_links`).
    pub fn has_link(&self, rel: &str) -> bool {
        self.links.contains_key(rel)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupProfile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub profile: GroupProfile,
}

/// What a lifecycle operation returned (one-time links, shown once and never stored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleResult {
    #[serde(default)]
    pub activation_url: Option<String>,
    #[serde(default)]
    pub reset_password_url: Option<String>,
    /// The user's status, when Okta answers with the whole user (`expire_password`).
    #[serde(default)]
    pub status: Option<UserStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_tolerates_nulls_unknown_fields_and_keeps_custom_attributes() {
        let raw = serde_json::json!({
            "id": "00u1", "status": "LOCKED_OUT", "created": "2024-01-10T09:00:00.000Z",
            "activated": null, "lastLogin": null, "brandNewField": {"x": 1},
            "profile": { "login": "a@example.com", "email": "a@example.com", "firstName": "Ada",
                         "lastName": null, "costCenter": "42", "nickName": "<b>x</b>" },
            "_links": { "self": {"href": "x"}, "unlock": {"href": "y", "method": "POST"} }
        });
        let user: User = serde_json::from_value(raw).unwrap();
        assert_eq!(user.status, UserStatus::LockedOut);
        assert_eq!(user.profile.last_name, None);
        assert_eq!(user.profile.other["costCenter"], "42");
        assert!(user.has_link("unlock") && !user.has_link("suspend"));
        assert_eq!(user.display_name(), "Ada");
    }

    #[test]
    fn unknown_status_does_not_fail() {
        let user: User = serde_json::from_value(
            serde_json::json!({"id": "00u1", "status": "ACTIVATING", "profile": {"login": "x"}}),
        )
        .unwrap();
        assert_eq!(user.status, UserStatus::Unknown);
    }
}

/// One page of users and the cursor of the next page (taken from the `next` link only).
/// Serialised only to share it between instances (the search cache in Redis).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_after: Option<String>,
    pub request_id: Option<String>,
}
