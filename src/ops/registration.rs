//! The public paths, for the registration edge: self-registration and password recovery.
//! Each records what really happened (a fixed reason, the client id); the caller learns
//! nothing about whether an account exists.

use super::record::{Attempt, Success};
use super::users::{CreateUser, validate_new_user};
use super::{Done, Op, OpError, Ops, Refusal, UserRef, Why, guard};
use crate::audit::Target;
use crate::auth::principal::Principal;
use crate::okta::OktaErrorKind;
use crate::okta::models::{Group, UserStatus};
use crate::okta::users::Lifecycle;

pub const REGISTRATION_REASON: &str = "Self-registration through the public edge";
pub const RECOVERY_REASON: &str = "Password recovery requested through the public edge";

/// What a member of the public types to register.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// What registering did (the caller sees the same answer either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Created(String),
    AlreadyExists,
}

/// What a recovery request did (the caller sees the same answer whatever happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    EmailSent,
    NothingDone,
}

impl Ops {
    /// The registration groups, resolved in Okta, never a protected or privileged one.
    async fn registration_groups(
        &self,
        names: &[String],
    ) -> Result<Vec<Group>, crate::okta::OktaError> {
        let protected = self.protected_groups();
        let all = self.okta.list_groups("", 200).await?;
        let wanted =
            |g: &Group| names.contains(&g.profile.name) && !protected.contains(&g.profile.name);
        Ok(all.into_iter().filter(wanted).collect())
    }

    /// What can be decided before Okta is asked, and so may be told to the caller: the
    /// permission (a refusal is recorded) and the fields. Whatever happens after it, the
    /// caller gets the same answer, so the public API answers right after this and runs
    /// [`Ops::register`] in the background: the time of the answer cannot tell a new address
    /// from an existing one.
    pub async fn admit_registration(
        &self,
        principal: &Principal,
        registration: &Registration,
    ) -> Result<(), OpError> {
        if let Err(refusal) = guard::permission(principal, &self.policy, Op::Register.permission())
        {
            let why = Why::fixed(REGISTRATION_REASON);
            let target = registration_target(registration);
            let attempt = Attempt::new(self, principal, Op::Register, Some(&why)).on_target(target);
            return Err(attempt.refused(refusal, None).await);
        }
        let errors = validate_new_user(&new_user(registration, Vec::new()), &[]);
        if !errors.is_empty() {
            return Err(OpError::Invalid(errors));
        }
        Ok(())
    }

    /// As [`Ops::admit_registration`], for a recovery.
    pub async fn admit_recovery(&self, principal: &Principal, login: &str) -> Result<(), OpError> {
        if let Err(refusal) = guard::permission(principal, &self.policy, Op::Recover.permission()) {
            let why = Why::fixed(RECOVERY_REASON);
            let target = Target {
                id: None,
                login: Some(login.to_string()),
                name: None,
            };
            let attempt = Attempt::new(self, principal, Op::Recover, Some(&why)).on_target(target);
            return Err(attempt.refused(refusal, None).await);
        }
        match UserRef::parse(login) {
            Ok(_) => Ok(()),
            Err(_) => Err(OpError::invalid("login", "Enter an email address.")),
        }
    }

    /// Creates the user (login = email, activation by Okta's email) in the registration groups.
    pub async fn register(
        &self,
        principal: &Principal,
        registration: &Registration,
        group_names: &[String],
    ) -> Result<Done<Registered>, OpError> {
        let why = Why::fixed(REGISTRATION_REASON);
        let target = registration_target(registration);
        let mut attempt = Attempt::new(self, principal, Op::Register, Some(&why)).on_target(target);
        if let Err(refusal) = guard::permission(principal, &self.policy, Op::Register.permission())
        {
            return Err(attempt.refused(refusal, None).await);
        }
        let groups = match self.registration_groups(group_names).await {
            Ok(groups) => groups,
            Err(e) => {
                return Err(attempt
                    .failed(
                        e,
                        Some("reading the registration groups failed".into()),
                        None,
                    )
                    .await);
            }
        };
        let new = new_user(registration, groups.iter().map(|g| g.id.clone()).collect());
        let errors = validate_new_user(&new, &groups);
        if !errors.is_empty() {
            return Err(OpError::Invalid(errors));
        }
        let request = crate::okta::users::NewUser {
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
            login: new.login,
            mobile_phone: None,
            password: None,
            group_ids: new.group_ids,
            activate: true,
        };
        attempt.sending().await?;
        match self.okta.create_user(&request).await {
            Ok(created) => {
                let user = created.body;
                let attempt = attempt.on_target(super::record::target_of(&user));
                let success = Success {
                    status_after: Some(user.status.as_str().to_string()),
                    ..Success::new(Registered::Created(user.id.clone()), created.request_id)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) if exists(&e) => {
                let request_id = e.request_id.clone();
                match attempt.failed(e, Some("already exists".into()), None).await {
                    OpError::Unrecorded(e) => Err(OpError::Unrecorded(e)),
                    _ => Ok(not_changed(Registered::AlreadyExists, request_id)),
                }
            }
            Err(e) => Err(attempt.failed(e, None, None).await),
        }
    }

    /// Starts Okta's password recovery by email, only for an active user (status `ACTIVE`, or
    /// `RECOVERY` for a second request) in a registration group who is not protected; for anyone else nothing happens (and that is recorded).
    pub async fn recover(
        &self,
        principal: &Principal,
        login: &str,
        group_names: &[String],
    ) -> Result<Done<Recovery>, OpError> {
        let why = Why::fixed(RECOVERY_REASON);
        let target = Target {
            id: None,
            login: Some(login.to_string()),
            name: None,
        };
        let mut attempt = Attempt::new(self, principal, Op::Recover, Some(&why)).on_target(target);
        if let Err(refusal) = guard::permission(principal, &self.policy, Op::Recover.permission()) {
            return Err(attempt.refused(refusal, None).await);
        }
        let Ok(user_ref) = UserRef::parse(login) else {
            return Err(OpError::invalid("login", "Enter an email address."));
        };
        let (user, groups) = match self.load(&user_ref).await {
            Ok(found) => found,
            Err(e) if e.kind == OktaErrorKind::NotFound => {
                return nothing(attempt.failed(e, Some("no such user".into()), None).await);
            }
            Err(e) => return Err(attempt.failed(e, None, None).await),
        };
        attempt.on_user(&user);
        if let Some(refusal) = self.recovery_refusal(&user, &groups, group_names) {
            return nothing(attempt.refused(refusal, Some(user)).await);
        }
        attempt.sending().await?;
        match self
            .okta
            .lifecycle(&user.id, Lifecycle::ResetPassword, Some(true))
            .await
        {
            Ok(done) => {
                let success = Success {
                    status_after: Some(UserStatus::Recovery.as_str().to_string()),
                    before: Some(user),
                    ..Success::new(Recovery::EmailSent, done.request_id)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => nothing(attempt.failed(e, None, Some(user)).await),
        }
    }

    fn recovery_refusal(
        &self,
        user: &crate::okta::models::User,
        groups: &[Group],
        group_names: &[String],
    ) -> Option<Refusal> {
        let protected = self.protected_groups();
        let hits: Vec<String> = groups
            .iter()
            .map(|g| g.profile.name.clone())
            .filter(|n| protected.contains(n))
            .collect();
        if !hits.is_empty() {
            return Some(Refusal::Protected(hits));
        }
        if !groups.iter().any(|g| group_names.contains(&g.profile.name)) {
            return Some(Refusal::NotSelfService);
        }
        // Only an active account (or one whose recovery is already under way, when the first
        // email went missing); never a staged, provisioned, suspended or deactivated one.
        if !matches!(user.status, UserStatus::Active | UserStatus::Recovery) {
            return Some(Refusal::NotOffered {
                label: Op::Recover.label(),
                status: user.status.label().to_string(),
            });
        }
        guard::offered(Op::Recover, user).err()
    }
}

fn registration_target(registration: &Registration) -> Target {
    Target {
        id: None,
        login: Some(registration.email.clone()),
        name: Some(format!(
            "{} {}",
            registration.first_name, registration.last_name
        )),
    }
}

fn new_user(registration: &Registration, group_ids: Vec<String>) -> CreateUser {
    CreateUser {
        first_name: registration.first_name.clone(),
        last_name: registration.last_name.clone(),
        email: registration.email.clone(),
        login: registration.email.clone(),
        group_ids,
        activate: true,
        ..CreateUser::default()
    }
}

fn exists(e: &crate::okta::OktaError) -> bool {
    e.kind == OktaErrorKind::Invalid
        && e.cause_for("login")
            .is_some_and(|c| c.contains("already exists"))
}

fn not_changed<T>(value: T, okta_request_id: Option<String>) -> Done<T> {
    Done {
        value,
        before: None,
        status_after: None,
        okta_request_id,
        one_time_link: None,
        recorded: super::Recorded::Missing,
    }
}

/// Recorded as refused or failed: the caller is told nothing happened (unless the record
/// itself could not be written, which fails the request).
fn nothing(recorded: OpError) -> Result<Done<Recovery>, OpError> {
    match recorded {
        OpError::Unrecorded(e) => Err(OpError::Unrecorded(e)),
        _ => Ok(not_changed(Recovery::NothingDone, None)),
    }
}
