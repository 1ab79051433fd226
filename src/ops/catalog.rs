//! The one table of operations: each operation's id, permission, audit action, labels,
//! consequence and Okta call. Adding an operation is one entry here plus its function in the
//! family module; front ends read labels and permissions from here, never spell them again.

use crate::audit::Action;
use crate::auth::policy::Permission;
use crate::okta::users::Lifecycle;

/// The Management API call an operation makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OktaCall {
    /// `POST /api/v1/users?activate=`.
    CreateUser,
    /// `POST /api/v1/users/{id}` with the changed profile attributes only.
    UpdateProfile,
    /// `POST /api/v1/users/{id}/lifecycle/{op}`.
    Lifecycle(Lifecycle),
    /// `DELETE /api/v1/users/{id}` (only ever sent for a DEPROVISIONED user).
    DeleteUser,
    /// `DELETE /api/v1/users/{id}/sessions?oauthTokens=`.
    ClearSessions,
    /// `PUT /api/v1/groups/{gid}/users/{id}`.
    AddToGroup,
    /// `DELETE /api/v1/groups/{gid}/users/{id}`.
    RemoveFromGroup,
    /// `POST /api/v1/users/{id}/factors`.
    EnrollFactor,
    /// `POST …/factors/{fid}/lifecycle/activate`.
    ActivateFactor,
    /// `POST …/factors/{fid}/resend`.
    ResendFactor,
    /// `DELETE …/factors/{fid}`.
    DeleteFactor,
}

/// Everything the portal says and checks about one operation.
#[derive(Debug)]
pub struct Spec {
    /// The path segment of the operation's pages (`/users/{id}/{slug}`).
    pub slug: &'static str,
    pub permission: Permission,
    pub action: Action,
    pub label: &'static str,
    /// Past tense, for "Karen Lamarr was unlocked."
    pub done: &'static str,
    /// What happens to the person.
    pub consequence: &'static str,
    /// The `_links` entry Okta sets on the user when it offers the operation.
    pub link: Option<&'static str>,
    /// Whether Okta can either email the user or hand back a one-time link.
    pub email_choice: bool,
    /// Shown in red and kept out of the way.
    pub destructive: bool,
    pub call: OktaCall,
}

macro_rules! operations {
    ($($id:ident {
        slug: $slug:literal, permission: $perm:ident, action: $action:ident,
        label: $label:literal, done: $done:literal, link: $link:expr,
        email: $email:literal, destructive: $destructive:literal, call: $call:expr,
        consequence: $consequence:literal $(,)?
    })*) => {
        /// One operation of the portal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op { $($id,)* }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$id,)*];

            pub fn spec(self) -> &'static Spec {
                match self {
                    $(Op::$id => &Spec {
                        slug: $slug,
                        permission: Permission::$perm,
                        action: Action::$action,
                        label: $label,
                        done: $done,
                        consequence: $consequence,
                        link: $link,
                        email_choice: $email,
                        destructive: $destructive,
                        call: $call,
                    },)*
                }
            }
        }
    };
}

use OktaCall::*;

operations! {
    CreateUser { slug: "new", permission: UsersCreate, action: UserCreate,
        label: "Create user", done: "created", link: None, email: false, destructive: false,
        call: CreateUser,
        consequence: "Creates the user in Okta, in the groups chosen." }
    Activate { slug: "activate", permission: UsersReactivate, action: UserActivate,
        label: "Activate", done: "activated", link: Some("activate"), email: true, destructive: false,
        call: Lifecycle(Lifecycle::Activate),
        consequence: "Starts activation: the user receives (or you receive) a one-time activation link, and becomes Active once they set up their account." }
    Reactivate { slug: "reactivate", permission: UsersReactivate, action: UserReactivate,
        label: "Resend activation", done: "sent a new activation", link: Some("reactivate"), email: true, destructive: false,
        call: Lifecycle(Lifecycle::Reactivate),
        consequence: "Issues a new activation link; the previous one stops working." }
    Unlock { slug: "unlock", permission: UsersUnlock, action: UserUnlock,
        label: "Unlock", done: "unlocked", link: Some("unlock"), email: false, destructive: false,
        call: Lifecycle(Lifecycle::Unlock),
        consequence: "Lets the user sign in again with their current password." }
    ResetPassword { slug: "reset-password", permission: UsersResetPassword, action: UserResetPassword,
        label: "Reset password", done: "put into password reset", link: Some("resetPassword"), email: true, destructive: false,
        call: Lifecycle(Lifecycle::ResetPassword),
        consequence: "The current password stops working. The user must set a new one through a one-time reset link before signing in." }
    ExpirePassword { slug: "expire-password", permission: UsersExpirePassword, action: UserExpirePassword,
        label: "Expire password", done: "given an expired password", link: Some("expirePassword"), email: false, destructive: false,
        call: Lifecycle(Lifecycle::ExpirePassword),
        consequence: "The user must choose a new password the next time they sign in." }
    Suspend { slug: "suspend", permission: UsersSuspend, action: UserSuspend,
        label: "Suspend", done: "suspended", link: Some("suspend"), email: false, destructive: true,
        call: Lifecycle(Lifecycle::Suspend),
        consequence: "Blocks sign-in until unsuspended. Apps and group memberships are kept." }
    Unsuspend { slug: "unsuspend", permission: UsersUnsuspend, action: UserUnsuspend,
        label: "Unsuspend", done: "unsuspended", link: Some("unsuspend"), email: false, destructive: false,
        call: Lifecycle(Lifecycle::Unsuspend),
        consequence: "Lets the user sign in again." }
    Deactivate { slug: "deactivate", permission: UsersDeactivate, action: UserDeactivate,
        label: "Deactivate", done: "deactivated", link: Some("deactivate"), email: false, destructive: true,
        call: Lifecycle(Lifecycle::Deactivate),
        consequence: "Signs the user out everywhere and removes all app access. They cannot sign in until reactivated." }
    Delete { slug: "delete", permission: UsersDelete, action: UserDelete,
        label: "Delete permanently", done: "deleted permanently", link: None, email: false, destructive: true,
        call: DeleteUser,
        consequence: "Removes the user from Okta for good. This cannot be undone." }
    ClearSessions { slug: "clear-sessions", permission: UsersSessions, action: UserClearSessions,
        label: "Clear sessions", done: "signed out everywhere", link: None, email: false, destructive: true,
        call: ClearSessions,
        consequence: "Ends every Okta session of the user: they must sign in again on every device. Optionally also revokes the access and refresh tokens apps hold for them." }
    UpdateProfile { slug: "profile", permission: UsersProfile, action: UserUpdateProfile,
        label: "Edit profile", done: "updated", link: None, email: false, destructive: false,
        call: UpdateProfile,
        consequence: "Changes only the profile attributes you edit; everything else stays as it is." }
    AddToGroup { slug: "groups/add", permission: UsersGroups, action: UserGroupAdd,
        label: "Add to group", done: "added to the group", link: None, email: false, destructive: false,
        call: AddToGroup,
        consequence: "The user gets the apps and access that come with the group." }
    RemoveFromGroup { slug: "groups/remove", permission: UsersGroups, action: UserGroupRemove,
        label: "Remove from group", done: "removed from the group", link: None, email: false, destructive: true,
        call: RemoveFromGroup,
        consequence: "The user loses the apps and access that come with the group." }
    EnrollFactor { slug: "factors/new", permission: FactorsEnroll, action: FactorEnroll,
        label: "Enroll a factor", done: "enrolled", link: None, email: false, destructive: false,
        call: EnrollFactor,
        consequence: "Starts an enrollment; it becomes active once the user reads back a code." }
    ActivateFactor { slug: "factors/activate", permission: FactorsEnroll, action: FactorActivate,
        label: "Activate factor", done: "activated", link: None, email: false, destructive: false,
        call: ActivateFactor,
        consequence: "Completes the enrollment with the code the user reads to you." }
    ResendFactor { slug: "factors/resend", permission: FactorsEnroll, action: FactorResend,
        label: "Send a new code", done: "sent a new code", link: None, email: false, destructive: false,
        call: ResendFactor,
        consequence: "Sends a new code; the previous one stops working." }
    AbandonFactor { slug: "factors/abandon", permission: FactorsEnroll, action: FactorReset,
        label: "Abandon enrollment", done: "abandoned", link: None, email: false, destructive: false,
        call: DeleteFactor,
        consequence: "Removes an enrollment that is not active yet." }
    ResetFactor { slug: "factors/reset", permission: FactorsReset, action: FactorReset,
        label: "Reset factor", done: "reset", link: None, email: false, destructive: true,
        call: DeleteFactor,
        consequence: "Removes the factor; the user must enroll it again to use it." }
    Register { slug: "register", permission: UsersRegister, action: UserRegister,
        label: "Register", done: "registered", link: None, email: false, destructive: false,
        call: CreateUser,
        consequence: "Creates a self-registered user in the registration groups; Okta emails the activation link." }
    Recover { slug: "recover", permission: UsersRecover, action: UserRecover,
        label: "Recover password", done: "sent a password recovery email", link: Some("resetPassword"), email: false, destructive: false,
        call: Lifecycle(Lifecycle::ResetPassword),
        consequence: "Okta emails the user a one-time link to choose a new password." }
    ResetAllFactors { slug: "factors/reset-all", permission: FactorsReset, action: FactorResetAll,
        label: "Reset all factors", done: "reset", link: None, email: false, destructive: true,
        call: Lifecycle(Lifecycle::ResetFactors),
        consequence: "Removes every factor; the user must enroll again at their next sign-in." }
}

impl Op {
    /// The confirm-and-do operations on one user: a confirmation page with reason and ticket.
    pub const USER_ACTIONS: [Op; 10] = [
        Op::Activate,
        Op::Reactivate,
        Op::Unlock,
        Op::ResetPassword,
        Op::ExpirePassword,
        Op::Suspend,
        Op::Unsuspend,
        Op::Deactivate,
        Op::ClearSessions,
        Op::Delete,
    ];

    pub fn permission(self) -> Permission {
        self.spec().permission
    }

    pub fn label(self) -> &'static str {
        self.spec().label
    }

    pub fn slug(self) -> &'static str {
        self.spec().slug
    }

    pub fn done(self) -> &'static str {
        self.spec().done
    }

    pub fn consequence(self) -> &'static str {
        self.spec().consequence
    }

    pub fn offers_email_choice(self) -> bool {
        self.spec().email_choice
    }

    pub fn destructive(self) -> bool {
        self.spec().destructive
    }

    /// By slug, among the user actions.
    pub fn user_action(slug: &str) -> Option<Op> {
        Op::USER_ACTIONS.into_iter().find(|op| op.slug() == slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_audit_actions_are_unique_where_they_must_be() {
        let mut slugs: Vec<&str> = Op::ALL.iter().map(|o| o.slug()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), Op::ALL.len());
        for op in Op::USER_ACTIONS {
            assert_eq!(Op::user_action(op.slug()), Some(op));
        }
        assert_eq!(Op::user_action("teleport"), None);
    }

    #[test]
    fn lifecycle_links_name_okta_rels() {
        assert_eq!(Op::Unlock.spec().link, Some("unlock"));
        assert_eq!(Op::ResetPassword.spec().link, Some("resetPassword"));
        assert_eq!(Op::Delete.spec().link, None);
        assert!(Op::ResetPassword.offers_email_choice() && !Op::Unlock.offers_email_choice());
    }
}
