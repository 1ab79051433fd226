//! Audit exactly once: every operation builds one [`Attempt`] and ends it through exactly one
//! of `refused`, `failed` or `succeeded`, which write the record and apply the one audit
//! failure policy of the operations layer (see the module documentation of `ops`).

use super::velocity::Counted;
use super::{Done, Op, OpError, Ops, Recorded, Refusal, Why};
use crate::audit::{NewEvent, Outcome, Target};
use crate::auth::principal::Principal;
use crate::okta::OktaError;
use crate::okta::models::User;

/// One attempted operation, up to its single audit record.
pub(super) struct Attempt<'a> {
    ops: &'a Ops,
    principal: &'a Principal,
    op: Op,
    why: Option<&'a Why>,
    target: Target,
    /// The user's status when loaded (recorded before → after for user operations).
    status_before: Option<String>,
    track_status: bool,
    /// Set by [`Attempt::sending`]: the change is announced to the trail (crash safety).
    unfinished: Option<crate::audit::unfinished::Unfinished>,
    /// The user as loaded, for a refusal at [`Attempt::sending`] (the velocity cap).
    user: Option<User>,
    /// Set by [`Attempt::sending`]: the change counts against its velocity cap.
    counted: std::sync::Mutex<Option<Counted>>,
}

pub(super) fn target_of(user: &User) -> Target {
    Target {
        id: Some(user.id.clone()),
        login: Some(user.profile.login.clone()),
        name: Some(user.display_name()),
    }
}

impl<'a> Attempt<'a> {
    pub(super) fn new(
        ops: &'a Ops,
        principal: &'a Principal,
        op: Op,
        why: Option<&'a Why>,
    ) -> Self {
        Attempt {
            ops,
            principal,
            op,
            why,
            target: Target::default(),
            status_before: None,
            track_status: false,
            unfinished: None,
            user: None,
            counted: std::sync::Mutex::new(None),
        }
    }

    /// Before the user is loaded: only the (validated) reference is known.
    pub(super) fn on_ref(mut self, reference: &str) -> Self {
        self.target.id = Some(reference.to_string());
        self
    }

    pub(super) fn on_target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Records the user's status before and after (lifecycle operations).
    pub(super) fn tracking_status(mut self) -> Self {
        self.track_status = true;
        self
    }

    pub(super) fn on_user(&mut self, user: &User) {
        self.target = target_of(user);
        self.status_before = Some(user.status.as_str().to_string());
        self.user = Some(user.clone());
    }

    /// Right before the change is sent to Okta, after every other guard: counts it against
    /// the principal's velocity cap (a refusal, recorded, when the cap is reached), then
    /// announces it to the audit trail, so that a process that dies during the call still
    /// leaves a record (outcome `unknown`). If even that cannot be written, nothing is sent.
    pub(super) async fn sending(&mut self) -> Result<(), OpError> {
        let counted = match self.ops.velocity_slot(self.principal, self.op).await {
            Ok(counted) => counted,
            Err(refusal) => return Err(self.refused(refusal, self.user.clone()).await),
        };
        let event = self.unchanged(self.event(Outcome::Unknown));
        match self.ops.audit.begin(event).await {
            Ok(unfinished) => self.unfinished = Some(unfinished),
            Err(e) => {
                if let Some(counted) = counted {
                    self.ops.velocity_uncount(counted, None).await;
                }
                return Err(OpError::Unrecorded(e));
            }
        }
        if let Ok(mut slot) = self.counted.lock() {
            *slot = counted;
        }
        Ok(())
    }

    async fn write(&self, event: NewEvent) -> anyhow::Result<i64> {
        self.ops
            .audit
            .record_finishing(event, self.unfinished.as_ref())
            .await
    }

    fn event(&self, outcome: Outcome) -> NewEvent {
        NewEvent::new(
            self.op.spec().action,
            outcome,
            self.principal.actor(),
            self.principal.meta.clone(),
        )
        .permission(self.op.permission().as_str())
        .target(self.target.clone())
        .why(
            self.why.map(|w| w.reason().to_string()),
            self.why.and_then(|w| w.ticket().map(str::to_string)),
        )
    }

    fn unchanged(&self, event: NewEvent) -> NewEvent {
        if self.track_status {
            event.statuses(self.status_before.clone(), self.status_before.clone())
        } else {
            event
        }
    }

    /// A guard refused: recorded as denied; if that cannot be recorded the request fails.
    pub(super) async fn refused(&self, refusal: Refusal, user: Option<User>) -> OpError {
        let event = self.unchanged(self.event(Outcome::Denied).detail(refusal.message()));
        match self.write(event).await {
            Ok(_) => OpError::Refused {
                refusal,
                user: user.map(Box::new),
            },
            Err(e) => OpError::Unrecorded(e),
        }
    }

    /// Okta refused or failed: recorded as a failure (with `detail`, or Okta's summary).
    pub(super) async fn failed(
        &self,
        error: OktaError,
        detail: Option<String>,
        user: Option<User>,
    ) -> OpError {
        let counted = self.counted.lock().ok().and_then(|mut c| c.take());
        if let Some(counted) = counted {
            self.ops.velocity_uncount(counted, Some(error.kind)).await;
        }
        let event = self
            .event(Outcome::Failure)
            .okta(error.request_id.clone(), error.code.clone())
            .detail(detail.unwrap_or_else(|| error.summary.clone()));
        match self.write(self.unchanged(event)).await {
            Ok(_) => OpError::Okta {
                error: Box::new(error),
                user: user.map(Box::new),
            },
            Err(e) => OpError::Unrecorded(e),
        }
    }

    /// The change happened in Okta. A record that cannot be written does not undo it: the
    /// caller is told (`Recorded::Missing`) and the failure is logged at error level.
    pub(super) async fn succeeded<T>(&self, done: Success<T>) -> Done<T> {
        let mut event = self
            .event(Outcome::Success)
            .okta(done.okta_request_id.clone(), None);
        if let Some(detail) = &done.detail {
            event = event.detail(detail.clone());
        }
        if self.track_status || done.status_after.is_some() {
            event = event.statuses(self.status_before.clone(), done.status_after.clone());
        }
        let recorded = match self.write(event).await {
            Ok(id) => Recorded::Yes(id),
            Err(e) => {
                tracing::error!(
                    request_id = ?self.principal.meta.request_id,
                    action = self.op.spec().action.as_str(),
                    error = ?e,
                    "an Okta change succeeded but its audit record could not be written"
                );
                Recorded::Missing
            }
        };
        Done {
            value: done.value,
            before: done.before,
            status_after: done.status_after,
            okta_request_id: done.okta_request_id,
            one_time_link: done.one_time_link,
            recorded,
        }
    }
}

/// What an operation hands to [`Attempt::succeeded`].
pub(super) struct Success<T> {
    pub value: T,
    pub before: Option<User>,
    pub status_after: Option<String>,
    pub okta_request_id: Option<String>,
    pub one_time_link: Option<super::OneTimeLink>,
    pub detail: Option<String>,
}

impl<T> Success<T> {
    pub fn new(value: T, okta_request_id: Option<String>) -> Success<T> {
        Success {
            value,
            before: None,
            status_after: None,
            okta_request_id,
            one_time_link: None,
            detail: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
