//! Velocity caps on destructive actions (`[limits.velocity]`): at most N deactivations,
//! password resets, factor resets … per principal (an agent, or a service's client id) in any
//! rolling hour, whichever front door they use.
//!
//! An action counts when it has passed every other guard and is about to be sent to Okta
//! ([`Ops::velocity_slot`], called by the audit attempt right before the change is announced):
//! the take is atomic, so two instances cannot both send the N + 1st. An action Okta refuses
//! (4xx) is uncounted again; one whose outcome is unknown (timeout, broken connection, 5xx)
//! stays counted. Reaching the cap is a [`Refusal::VelocityCap`], recorded like every refusal.
//!
//! A manager (`limits.lift`) lifts the caps of another principal for the rest of the UTC day
//! ([`Ops::lift_velocity`]): stored in the database (`velocity_lifts`), so every instance sees
//! it, and audited (`velocity.lift`). While lifted, actions are still counted (the timeline
//! shows them) but not capped.

mod lifts;

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Op, OpError, Ops, Recorded, Refusal, Why, guard};
use crate::audit::{Action, NewEvent, Outcome, Target};
use crate::auth::policy::Permission;
use crate::auth::principal::Principal;
use crate::cluster::Shared;
use crate::cluster::velocity::{Slot, Take};
use crate::okta::OktaErrorKind;

pub use lifts::Lift;

/// The window of every cap.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// `[limits]`: the portal's own limits on what principals do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub velocity: VelocityConfig,
}

/// `[limits.velocity]`: actions per principal per rolling hour; 0 = no cap.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VelocityConfig {
    pub deactivate: u32,
    pub delete: u32,
    pub suspend: u32,
    /// Password resets (emailed or as a one-time link) and expired passwords.
    pub reset_password: u32,
    /// One factor reset or all factors.
    pub reset_factors: u32,
    pub clear_sessions: u32,
    pub remove_from_group: u32,
}

impl Default for VelocityConfig {
    fn default() -> Self {
        VelocityConfig {
            deactivate: 20,
            delete: 20,
            suspend: 50,
            reset_password: 50,
            reset_factors: 50,
            clear_sessions: 50,
            remove_from_group: 50,
        }
    }
}

/// One capped kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Deactivate,
    Delete,
    Suspend,
    ResetPassword,
    ResetFactors,
    ClearSessions,
    RemoveFromGroup,
}

impl Cap {
    pub const ALL: [Cap; 7] = [
        Cap::Deactivate,
        Cap::Delete,
        Cap::Suspend,
        Cap::ResetPassword,
        Cap::ResetFactors,
        Cap::ClearSessions,
        Cap::RemoveFromGroup,
    ];

    /// The cap an operation counts against. Self-service recovery (the registration edge) has
    /// limits of its own.
    pub fn of(op: Op) -> Option<Cap> {
        Some(match op {
            Op::Deactivate => Cap::Deactivate,
            Op::Delete => Cap::Delete,
            Op::Suspend => Cap::Suspend,
            Op::ResetPassword | Op::ExpirePassword => Cap::ResetPassword,
            Op::ResetFactor | Op::ResetAllFactors => Cap::ResetFactors,
            Op::ClearSessions => Cap::ClearSessions,
            Op::RemoveFromGroup => Cap::RemoveFromGroup,
            _ => return None,
        })
    }

    /// The configuration key, also the Redis key segment.
    pub fn name(self) -> &'static str {
        match self {
            Cap::Deactivate => "deactivate",
            Cap::Delete => "delete",
            Cap::Suspend => "suspend",
            Cap::ResetPassword => "reset_password",
            Cap::ResetFactors => "reset_factors",
            Cap::ClearSessions => "clear_sessions",
            Cap::RemoveFromGroup => "remove_from_group",
        }
    }

    /// For the timeline.
    pub fn label(self) -> &'static str {
        match self {
            Cap::Deactivate => "Deactivations",
            Cap::Delete => "Deletions",
            Cap::Suspend => "Suspensions",
            Cap::ResetPassword => "Password resets and expiries",
            Cap::ResetFactors => "Factor resets",
            Cap::ClearSessions => "Sessions cleared",
            Cap::RemoveFromGroup => "Removals from groups",
        }
    }

    /// "deactivated 20 users", for the refusal.
    fn did(self, n: u32) -> String {
        let users = if n == 1 { "user" } else { "users" };
        match self {
            Cap::Deactivate => format!("deactivated {n} {users}"),
            Cap::Delete => format!("deleted {n} {users}"),
            Cap::Suspend => format!("suspended {n} {users}"),
            Cap::ResetPassword => format!("reset or expired the passwords of {n} {users}"),
            Cap::ResetFactors => format!("reset the factors of {n} {users}"),
            Cap::ClearSessions => format!("signed {n} {users} out everywhere"),
            Cap::RemoveFromGroup => format!("removed {n} {users} from groups"),
        }
    }
}

impl VelocityConfig {
    /// The cap's limit (0: none).
    pub fn limit(&self, cap: Cap) -> u32 {
        match cap {
            Cap::Deactivate => self.deactivate,
            Cap::Delete => self.delete,
            Cap::Suspend => self.suspend,
            Cap::ResetPassword => self.reset_password,
            Cap::ResetFactors => self.reset_factors,
            Cap::ClearSessions => self.clear_sessions,
            Cap::RemoveFromGroup => self.remove_from_group,
        }
    }
}

/// The refusal's words: "You have deactivated 20 users in the last hour, the most allowed. …".
pub fn cap_message(cap: Cap, limit: u32) -> String {
    format!(
        "You have {} in the last hour, the most allowed. A manager can lift this for you for the rest of today.",
        cap.did(limit)
    )
}

/// The caps and where their windows are kept.
#[derive(Debug, Clone)]
pub struct Velocity {
    shared: Shared,
    config: VelocityConfig,
}

impl Velocity {
    pub fn new(shared: Shared, config: VelocityConfig) -> Velocity {
        Velocity { shared, config }
    }
}

/// An action counted against a cap, until Okta's answer says whether it stays counted.
#[derive(Debug)]
pub(super) struct Counted(Slot);

/// One cap on a principal's timeline.
#[derive(Debug, Clone)]
pub struct CapUsage {
    pub label: &'static str,
    pub used: u32,
    /// 0: no cap.
    pub limit: u32,
    /// Whole minutes until the oldest counted action leaves the window.
    pub frees_in_minutes: u64,
}

/// A principal's caps now: usage per cap and the lift, if any.
#[derive(Debug, Clone)]
pub struct VelocityStatus {
    pub caps: Vec<CapUsage>,
    pub lift: Option<Lift>,
}

/// Whom a lift is for: the principal's subject and, when known, their name (a snapshot for
/// the audit record).
#[derive(Debug, Clone)]
pub struct LiftTarget {
    pub subject: String,
    pub name: Option<String>,
}

/// A lift that was stored.
#[derive(Debug, Clone)]
pub struct Lifted {
    pub lift: Lift,
    pub recorded: Recorded,
}

/// The end of the UTC day `now` is in.
pub fn end_of_utc_day(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let next = now.date().next_day().unwrap_or(now.date());
    next.midnight().assume_utc()
}

impl Ops {
    /// Replaces the caps (start-up: the configured ones, on the instances' shared windows).
    pub fn with_velocity(mut self, velocity: Velocity) -> Ops {
        self.velocity = velocity;
        self
    }

    /// Counts `op` for the principal, or refuses when its cap is reached. `None` when the
    /// operation is not capped (or its cap is 0).
    pub(super) async fn velocity_slot(
        &self,
        principal: &Principal,
        op: Op,
    ) -> Result<Option<Counted>, Refusal> {
        let Some(cap) = Cap::of(op) else {
            return Ok(None);
        };
        let limit = self.velocity.config.limit(cap);
        if limit == 0 {
            return Ok(None);
        }
        let lifted = match lifts::active(self.audit.db(), &principal.subject).await {
            Ok(lift) => lift.is_some(),
            Err(e) => {
                // Never no cap: without the database the cap applies.
                tracing::warn!(error = ?e, "velocity lifts could not be read; the cap applies");
                false
            }
        };
        let shared = &self.velocity.shared;
        let cap_limit = if lifted { 0 } else { limit };
        match shared
            .velocity_take(cap.name(), &principal.subject, cap_limit, WINDOW)
            .await
        {
            Take::Counted { slot, .. } => Ok(Some(Counted(slot))),
            Take::Full { retry_after } => {
                crate::metrics::rate_limited("velocity");
                Err(Refusal::VelocityCap {
                    message: cap_message(cap, limit),
                    retry_after_seconds: retry_after.as_secs().max(1),
                })
            }
        }
    }

    /// Okta answered with an error: an action Okta refused does not count; one whose outcome
    /// is unknown does.
    pub(super) async fn velocity_uncount(&self, counted: Counted, kind: Option<OktaErrorKind>) {
        use OktaErrorKind::*;
        let refused = matches!(
            kind,
            None | Some(
                NotFound | Invalid | NotAllowed | RateLimited | Busy | Unauthorized | Forbidden
            )
        );
        if refused {
            self.velocity.shared.velocity_release(counted.0).await;
        }
    }

    /// Usage per cap and the active lift of `subject`, for the timeline.
    pub async fn velocity_status(&self, subject: &str) -> anyhow::Result<VelocityStatus> {
        let mut caps = Vec::new();
        for cap in Cap::ALL {
            let usage = self
                .velocity
                .shared
                .velocity_usage(cap.name(), subject, WINDOW)
                .await;
            caps.push(CapUsage {
                label: cap.label(),
                used: usage.used,
                limit: self.velocity.config.limit(cap),
                frees_in_minutes: usage.oldest_leaves_in.as_secs().div_ceil(60),
            });
        }
        let lift = lifts::active(self.audit.db(), subject).await?;
        Ok(VelocityStatus { caps, lift })
    }

    /// Lifts every velocity cap of `target` until the end of the UTC day. Needs
    /// `limits.lift`; nobody lifts their own caps. Audited once (`velocity.lift`).
    pub async fn lift_velocity(
        &self,
        principal: &Principal,
        target: &LiftTarget,
        why: &Why,
    ) -> Result<Lifted, OpError> {
        let subject = target.subject.trim();
        if subject.is_empty() || subject.len() > 100 || subject.chars().any(char::is_control) {
            return Err(OpError::invalid(
                "subject",
                "That is not an agent or client id.",
            ));
        }
        let snapshot = Target {
            id: Some(subject.to_string()),
            login: None,
            name: target.name.clone(),
        };
        let event = |outcome| lift_event(principal, &snapshot, why, outcome);
        let refusal = guard::permission(principal, &self.policy, Permission::LimitsLift)
            .err()
            .or_else(|| (principal.subject == subject).then_some(Refusal::OwnLimits));
        if let Some(refusal) = refusal {
            let denied = event(Outcome::Denied).detail(refusal.message());
            return Err(match self.audit.record(denied).await {
                Ok(_) => OpError::Refused {
                    refusal,
                    user: None,
                },
                Err(e) => OpError::Unrecorded(e),
            });
        }
        let now = OffsetDateTime::now_utc();
        let lift = Lift {
            subject: subject.to_string(),
            until: end_of_utc_day(now),
            by_name: principal.name.clone(),
        };
        lifts::insert(self.audit.db(), &lift, principal, why, now)
            .await
            .map_err(|e| {
                OpError::Unrecorded(e.context("storing a velocity lift (none was made)"))
            })?;
        let detail = format!(
            "Velocity caps lifted until {} (the end of the UTC day).",
            lift.until_label()
        );
        let recorded = match self
            .audit
            .record(event(Outcome::Success).detail(detail))
            .await
        {
            Ok(id) => Recorded::Yes(id),
            Err(e) => {
                tracing::error!(error = ?e, request_id = %principal.meta.request_id,
                    "a velocity lift was stored but its audit record could not be written");
                Recorded::Missing
            }
        };
        Ok(Lifted { lift, recorded })
    }
}

/// The one record of a lift (or of its refusal).
fn lift_event(principal: &Principal, target: &Target, why: &Why, outcome: Outcome) -> NewEvent {
    NewEvent::new(
        Action::VelocityLift,
        outcome,
        principal.actor(),
        principal.meta.clone(),
    )
    .permission(Permission::LimitsLift.as_str())
    .target(target.clone())
    .why(
        Some(why.reason().to_string()),
        why.ticket().map(str::to_string),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::{AGENTS, MANAGERS};
    use crate::auth::principal::fake;
    use crate::ops::config::UsersConfig;

    #[test]
    fn destructive_operations_are_capped_and_the_message_says_what_and_who_lifts() {
        for op in Op::ALL {
            if op.destructive() {
                assert!(
                    Cap::of(*op).is_some(),
                    "{op:?} is destructive but not capped"
                );
            }
        }
        assert_eq!(Cap::of(Op::ExpirePassword), Some(Cap::ResetPassword));
        assert_eq!(Cap::of(Op::ResetAllFactors), Some(Cap::ResetFactors));
        assert_eq!(Cap::of(Op::Recover), None);
        assert_eq!(Cap::of(Op::Unlock), None);
        assert_eq!(
            cap_message(Cap::Deactivate, 20),
            "You have deactivated 20 users in the last hour, the most allowed. A manager can lift this for you for the rest of today."
        );
        assert_eq!(VelocityConfig::default().limit(Cap::Deactivate), 20);
        assert_eq!(VelocityConfig::default().limit(Cap::ResetFactors), 50);
    }

    #[test]
    fn a_lift_lasts_until_the_end_of_the_utc_day() {
        let late = time::macros::datetime!(2026-12-07 23:59:30 +01:00);
        assert_eq!(
            end_of_utc_day(late),
            time::macros::datetime!(2026-12-08 00:00:00 UTC)
        );
        let early = time::macros::datetime!(2026-12-07 00:00:00 UTC);
        assert_eq!(
            end_of_utc_day(early),
            time::macros::datetime!(2026-12-08 00:00:00 UTC)
        );
    }

    #[tokio::test]
    async fn the_cap_refuses_the_next_one_and_a_lift_by_another_manager_lets_it_through() {
        let config = VelocityConfig {
            deactivate: 2,
            ..VelocityConfig::default()
        };
        let ops = crate::ops::test_ops(UsersConfig::default())
            .await
            .with_velocity(Velocity::new(Shared::local(), config));
        let agent = fake::agent(&ops.policy, &[AGENTS], &["admin.users.lifecycle"]);
        for _ in 0..2 {
            let counted = ops.velocity_slot(&agent, Op::Deactivate).await.unwrap();
            assert!(counted.is_some());
        }
        let refused = ops.velocity_slot(&agent, Op::Deactivate).await.unwrap_err();
        assert_eq!(refused.code(), "velocity_cap");
        assert!(
            refused
                .message()
                .starts_with("You have deactivated 2 users")
        );
        assert!(
            ops.velocity_slot(&agent, Op::Unlock)
                .await
                .unwrap()
                .is_none()
        );
        let status = ops.velocity_status(&agent.subject).await.unwrap();
        assert_eq!(status.caps[0].used, 2);
        assert!(status.lift.is_none());
        lift_as_another_manager(&ops, &agent).await;
    }

    async fn lift_as_another_manager(ops: &Ops, agent: &Principal) {
        let why = Why::fixed("Bulk offboarding approved by HR");
        let target = LiftTarget {
            subject: agent.subject.clone(),
            name: Some(agent.name.clone()),
        };
        // Nobody lifts their own cap, and an agent without limits.lift cannot lift.
        let own = ops.lift_velocity(agent, &target, &why).await.unwrap_err();
        assert!(matches!(
            own,
            OpError::Refused {
                refusal: Refusal::Permission(_),
                ..
            }
        ));
        let mut manager = fake::agent(&ops.policy, &[MANAGERS], &["admin.audit.read"]);
        let self_lift = LiftTarget {
            subject: manager.subject.clone(),
            name: None,
        };
        let own = ops
            .lift_velocity(&manager, &self_lift, &why)
            .await
            .unwrap_err();
        assert!(matches!(
            own,
            OpError::Refused {
                refusal: Refusal::OwnLimits,
                ..
            }
        ));
        manager.subject = "00uManager".into();
        let lifted = ops.lift_velocity(&manager, &target, &why).await.unwrap();
        assert!(matches!(lifted.recorded, Recorded::Yes(_)));
        assert!(
            ops.velocity_slot(agent, Op::Deactivate)
                .await
                .unwrap()
                .is_some()
        );
        let status = ops.velocity_status(&agent.subject).await.unwrap();
        assert_eq!(status.caps[0].used, 3, "counted, not capped, while lifted");
        assert_eq!(status.lift.map(|l| l.by_name), Some(manager.name.clone()));
        let rows = ops.audit.recent(10).await.unwrap();
        let actions: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("velocity.lift", "success"),
                ("velocity.lift", "denied"),
                ("velocity.lift", "denied")
            ]
        );
    }

    #[tokio::test]
    async fn okta_refusals_are_uncounted_and_unknown_outcomes_are_not() {
        let config = VelocityConfig {
            suspend: 1,
            ..VelocityConfig::default()
        };
        let ops = crate::ops::test_ops(UsersConfig::default())
            .await
            .with_velocity(Velocity::new(Shared::local(), config));
        let agent = fake::agent(&ops.policy, &[AGENTS], &["admin.users.lifecycle"]);
        let counted = ops
            .velocity_slot(&agent, Op::Suspend)
            .await
            .unwrap()
            .unwrap();
        ops.velocity_uncount(counted, Some(OktaErrorKind::NotAllowed))
            .await;
        let counted = ops
            .velocity_slot(&agent, Op::Suspend)
            .await
            .unwrap()
            .unwrap();
        ops.velocity_uncount(counted, Some(OktaErrorKind::Timeout))
            .await;
        assert!(ops.velocity_slot(&agent, Op::Suspend).await.is_err());
    }
}
