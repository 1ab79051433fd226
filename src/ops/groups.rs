//! Group membership: add a user to, or remove them from, an allow-listed Okta group.

use super::record::{Attempt, Success};
use super::{Done, Op, OpError, Ops, UserRef, Why};
use crate::auth::principal::Principal;
use crate::okta::models::Group;

#[derive(Debug, Clone)]
pub struct Membership {
    pub user: UserRef,
    /// The Okta group id.
    pub group_id: String,
}

impl Ops {
    /// The groups whose membership may be changed (`users.membership_groups`, resolved in Okta,
    /// without protected or privileged ones).
    pub async fn membership_groups(&self) -> Result<Vec<Group>, crate::okta::OktaError> {
        let all = self.okta.list_groups("", 200).await?;
        Ok(all
            .into_iter()
            .filter(|g| self.guard_group(g).is_ok())
            .collect())
    }

    /// Adds (`member = true`) or removes the user.
    pub async fn set_membership(
        &self,
        principal: &Principal,
        change: &Membership,
        member: bool,
        why: &Why,
    ) -> Result<Done<Group>, OpError> {
        let op = if member {
            Op::AddToGroup
        } else {
            Op::RemoveFromGroup
        };
        if super::input::factor_id(&change.group_id).is_err() {
            return Err(OpError::invalid("group", "That is not an Okta group id."));
        }
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(change.user.as_str());
        let (user, _) = self
            .load_guarded(&mut attempt, principal, op, &change.user)
            .await?;
        let group = match self.okta.get_group(&change.group_id).await {
            Ok(group) => group,
            Err(e) => {
                let detail = format!("reading the group failed: {}", e.summary);
                return Err(attempt.failed(e, Some(detail), Some(user)).await);
            }
        };
        if let Err(refusal) = self.guard_group(&group) {
            return Err(attempt.refused(refusal, Some(user)).await);
        }
        let detail = format!(
            "{} group {}",
            if member { "added to" } else { "removed from" },
            group.profile.name
        );
        attempt.sending().await?;
        match self.okta.set_membership(&group.id, &user.id, member).await {
            Ok(done) => {
                let success = Success {
                    before: Some(user),
                    ..Success::new(group, done.request_id).detail(detail)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt
                .failed(e, Some(format!("{detail}: {}", "failed")), Some(user))
                .await),
        }
    }
}
