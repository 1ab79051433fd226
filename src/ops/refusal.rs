//! Why an operation was refused, in words for people and as stable codes for the API.

use crate::auth::policy::Decision;

/// Why a guard refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The policy does not grant the operation's permission.
    Permission(Box<Decision>),
    /// A person acting on their own account.
    OwnAccount,
    /// The user is in protected or privileged groups and the principal lacks users.protected.
    Protected(Vec<String>),
    /// Okta does not offer the operation for the user's status (no `_links` entry).
    NotOffered { label: &'static str, status: String },
    /// Delete is offered only for deactivated users (the first DELETE would only deactivate).
    NotDeprovisioned,
    /// Okta refuses profile changes for deactivated users.
    Deprovisioned,
    /// The group is not in `users.membership_groups`, or is protected.
    GroupNotAllowed(String),
    /// Okta manages this group's membership elsewhere (app or built-in group).
    GroupNotManaged(String),
    /// The attribute is not in `users.editable_attributes`.
    AttributeNotEditable(String),
    /// The user changed since the caller read it (`If-Match`).
    Stale,
    /// Only an enrollment that is not active yet can be abandoned.
    FactorNotPending,
    /// The public paths (registration, recovery) touch only users in the registration groups.
    NotSelfService,
    /// The principal reached a velocity cap (`[limits.velocity]`); the message says which.
    VelocityCap {
        message: String,
        /// Until one more is allowed (the oldest counted action leaves the hour).
        retry_after_seconds: u64,
    },
    /// A manager lifting their own velocity caps.
    OwnLimits,
}

impl Refusal {
    /// In words for the person or service refused.
    pub fn message(&self) -> String {
        match self {
            Refusal::Permission(d) => format!(
                "You do not have the permission “{}” ({}).",
                d.permission,
                d.permission.label().to_lowercase()
            ),
            Refusal::OwnAccount => {
                "This is your own account: agents may not change their own account in the portal."
                    .into()
            }
            Refusal::Protected(groups) => format!(
                "This user is protected (member of {}). Changing them needs the permission users.protected.",
                groups.join(", ")
            ),
            Refusal::NotOffered { label, status } => format!(
                "Okta does not offer “{label}” for a user who is {}.",
                status.to_lowercase()
            ),
            Refusal::NotDeprovisioned => {
                "Only deactivated users can be deleted. Deactivate the user first.".into()
            }
            Refusal::Deprovisioned => {
                "Okta does not allow changing the profile of a deactivated user.".into()
            }
            Refusal::GroupNotAllowed(g) => format!(
                "Membership of “{g}” cannot be changed in the portal (it is not in users.membership_groups, or it is protected)."
            ),
            Refusal::GroupNotManaged(g) => format!(
                "Membership of “{g}” is managed outside Okta (an app or built-in group) and cannot be changed here."
            ),
            Refusal::AttributeNotEditable(a) => {
                format!("The profile attribute “{a}” cannot be edited in the portal.")
            }
            Refusal::Stale => {
                "The user changed since you loaded them. Load the user again and repeat the change."
                    .into()
            }
            Refusal::FactorNotPending => {
                "Only an enrollment that is not active yet can be abandoned.".into()
            }
            Refusal::NotSelfService => {
                "This user is not in a registration group: the public paths cannot change them."
                    .into()
            }
            Refusal::VelocityCap { message, .. } => message.clone(),
            Refusal::OwnLimits => {
                "These are your own velocity caps: another manager must lift them.".into()
            }
        }
    }

    /// A stable code for API problem documents.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Permission(_) => "permission_denied",
            Refusal::OwnAccount => "own_account",
            Refusal::Protected(_) => "protected_user",
            Refusal::NotOffered { .. } => "not_offered_in_status",
            Refusal::NotDeprovisioned => "not_deprovisioned",
            Refusal::Deprovisioned => "user_deprovisioned",
            Refusal::GroupNotAllowed(_) => "group_not_allowed",
            Refusal::GroupNotManaged(_) => "group_not_managed",
            Refusal::AttributeNotEditable(_) => "attribute_not_editable",
            Refusal::Stale => "precondition_failed",
            Refusal::FactorNotPending => "factor_not_pending",
            Refusal::NotSelfService => "not_self_service",
            Refusal::VelocityCap { .. } => "velocity_cap",
            Refusal::OwnLimits => "own_limits",
        }
    }

    /// For a refusal that ends by itself (a velocity cap): the seconds until it does, for
    /// `Retry-After` (429 for the API and the pages).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Refusal::VelocityCap {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// Whether the refusal is about the user's current state (409 for the API) rather than
    /// who is asking (403).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::NotOffered { .. }
                | Refusal::NotDeprovisioned
                | Refusal::Deprovisioned
                | Refusal::FactorNotPending
        )
    }
}
