//! The confirm-and-do operations on one user: the nine lifecycle actions, delete, and clear
//! sessions. At most two Okta round trips: the user and their groups together, then the change;
//! the status afterwards comes from Okta's answer or its documented result, not a third read.

use secrecy::SecretString;

use super::catalog::OktaCall;
use super::record::{Attempt, Success};
use super::{Done, OneTimeLink, Op, OpError, Ops, UserRef, Why, guard};
use crate::auth::principal::Principal;
use crate::okta::OktaError;
use crate::okta::models::{Group, LifecycleResult, User, UserStatus};

/// Input of a user action.
#[derive(Debug, Clone)]
pub struct UserAction {
    pub user: UserRef,
    /// For activate, reactivate and reset password: let Okta email the user (otherwise Okta
    /// hands back a one-time link, shown once).
    pub send_email: bool,
    /// For clear sessions: also revoke the OAuth access and refresh tokens issued to the user.
    pub revoke_tokens: bool,
}

impl Ops {
    /// Loads the user and their groups and runs the guards every user operation passes. A
    /// failed load or a refusal is recorded through `attempt`.
    pub(super) async fn load_guarded(
        &self,
        attempt: &mut Attempt<'_>,
        principal: &Principal,
        op: Op,
        user: &UserRef,
    ) -> Result<(User, Vec<Group>), OpError> {
        // What the guards read is part of the change: it may use the write reserve.
        let loaded = crate::okta::budget::for_a_change(self.load(user)).await;
        let (user, groups) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let detail = format!("reading the user failed: {}", e.summary);
                return Err(attempt.failed(e, Some(detail), None).await);
            }
        };
        attempt.on_user(&user);
        if let Err(refusal) = self.guard_user(principal, op, &user, &groups) {
            return Err(attempt.refused(refusal, Some(user)).await);
        }
        Ok((user, groups))
    }

    /// Runs one of [`Op::USER_ACTIONS`].
    pub async fn user_action(
        &self,
        principal: &Principal,
        op: Op,
        input: &UserAction,
        why: &Why,
    ) -> Result<Done, OpError> {
        if !Op::USER_ACTIONS.contains(&op) {
            return Err(OpError::invalid(
                "action",
                "That is not an action on a user.",
            ));
        }
        let mut attempt = Attempt::new(self, principal, op, Some(why))
            .on_ref(input.user.as_str())
            .tracking_status();
        let (user, _) = self
            .load_guarded(&mut attempt, principal, op, &input.user)
            .await?;
        if let Err(refusal) = guard::offered(op, &user) {
            return Err(attempt.refused(refusal, Some(user)).await);
        }
        attempt.sending().await?;
        match self.call_user_action(op, &user, input).await {
            Ok((request_id, answer)) => {
                let success = Success {
                    status_after: Some(status_after(op, &user, answer.status)),
                    one_time_link: one_time_link(answer),
                    before: Some(user),
                    ..Success::new((), request_id)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt.failed(e, None, Some(user)).await),
        }
    }

    async fn call_user_action(
        &self,
        op: Op,
        user: &User,
        input: &UserAction,
    ) -> Result<(Option<String>, LifecycleResult), OktaError> {
        match op.spec().call {
            OktaCall::Lifecycle(operation) => {
                let send = op.offers_email_choice().then_some(input.send_email);
                let r = self.okta.lifecycle(&user.id, operation, send).await?;
                Ok((r.request_id, r.body))
            }
            OktaCall::DeleteUser => {
                let r = self.okta.delete_user(&user.id).await?;
                Ok((r.request_id, LifecycleResult::default()))
            }
            OktaCall::ClearSessions => {
                let r = self
                    .okta
                    .clear_sessions(&user.id, input.revoke_tokens)
                    .await?;
                Ok((r.request_id, LifecycleResult::default()))
            }
            other => Err(OktaError::new(
                crate::okta::OktaErrorKind::NotAllowed,
                format!("{other:?} is not a user action"),
            )),
        }
    }
}

fn one_time_link(answer: LifecycleResult) -> Option<OneTimeLink> {
    match (answer.activation_url, answer.reset_password_url) {
        (Some(url), _) => Some(OneTimeLink {
            label: "Activation link",
            url: SecretString::from(url),
        }),
        (None, Some(url)) => Some(OneTimeLink {
            label: "Password reset link",
            url: SecretString::from(url),
        }),
        _ => None,
    }
}

/// The status after a successful action: Okta's answer when it sends the user, otherwise the
/// result OKTA-FACTS.md §6 documents for the operation.
fn status_after(op: Op, user: &User, answered: Option<UserStatus>) -> String {
    if let Some(status) = answered.filter(|s| *s != UserStatus::Unknown) {
        return status.as_str().to_string();
    }
    let status = match op {
        Op::Activate if user.has_password() => UserStatus::Active,
        Op::Activate => UserStatus::Provisioned,
        Op::Deactivate => UserStatus::Deprovisioned,
        Op::Suspend => UserStatus::Suspended,
        Op::Unsuspend | Op::Unlock => UserStatus::Active,
        Op::ResetPassword => UserStatus::Recovery,
        Op::ExpirePassword => UserStatus::PasswordExpired,
        Op::Delete => return "DELETED".to_string(),
        _ => user.status,
    };
    status.as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(status: &str, password: bool) -> User {
        let credentials = if password {
            serde_json::json!({"password": {}})
        } else {
            serde_json::json!({})
        };
        serde_json::from_value(serde_json::json!({
            "id": "00u1", "status": status, "profile": {"login": "a@example.com"},
            "credentials": credentials
        }))
        .unwrap()
    }

    #[test]
    fn the_status_after_follows_okta_without_reading_the_user_again() {
        let staged = user("STAGED", false);
        assert_eq!(status_after(Op::Activate, &staged, None), "PROVISIONED");
        assert_eq!(
            status_after(Op::Activate, &user("STAGED", true), None),
            "ACTIVE"
        );
        assert_eq!(status_after(Op::Delete, &staged, None), "DELETED");
        assert_eq!(
            status_after(Op::Reactivate, &user("RECOVERY", false), None),
            "RECOVERY"
        );
        assert_eq!(
            status_after(
                Op::ExpirePassword,
                &staged,
                Some(UserStatus::PasswordExpired)
            ),
            "PASSWORD_EXPIRED"
        );
        assert_eq!(
            status_after(Op::ClearSessions, &user("LOCKED_OUT", true), None),
            "LOCKED_OUT"
        );
    }
}
