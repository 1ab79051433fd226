//! Creating users and editing their profiles.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::Value;

use super::record::{Attempt, Success};
use super::{Done, FieldErrors, Op, OpError, Ops, Refusal, UserRef, Why, guard, input};
use crate::audit::Target;
use crate::auth::principal::Principal;
use crate::okta::OktaErrorKind;
use crate::okta::models::{Group, User};
use crate::okta::users::NewUser;

/// A user to create, as typed (the front end has trimmed it).
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Defaults to the email when empty.
    pub login: String,
    pub mobile_phone: String,
    /// `None`: Okta emails an activation link and the user chooses a password.
    pub password: Option<SecretString>,
    /// Okta group ids, from [`Ops::create_groups`].
    pub group_ids: Vec<String>,
    pub activate: bool,
}

pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        && !domain.contains('@')
}

fn text_problem(value: &str, label: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        Some(format!("Enter the {label}."))
    } else if value.chars().count() > max {
        Some(format!("The {label} can be at most {max} characters."))
    } else if input::has_four_byte_chars(value) || value.chars().any(char::is_control) {
        Some("Okta does not accept characters such as emoji here.".into())
    } else {
        None
    }
}

fn phone_problem(phone: &str) -> Option<String> {
    let digits = phone.chars().filter(|c| c.is_ascii_digit()).count();
    let bad = phone.len() > 100
        || !phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        || digits < 6;
    bad.then(|| "Enter a phone number such as +1 555 0100.".to_string())
}

/// Server-side validation of a new user, one message per field.
pub fn validate_new_user(user: &CreateUser, allowed_groups: &[Group]) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let mut check = |field: &'static str, problem: Option<String>| {
        if let Some(p) = problem {
            errors.entry(field).or_insert(p);
        }
    };
    check(
        "first_name",
        text_problem(&user.first_name, "first name", 50),
    );
    check("last_name", text_problem(&user.last_name, "last name", 50));
    check("email", text_problem(&user.email, "email address", 100));
    check("login", text_problem(&user.login, "login", 100));
    let email_ok = user.email.chars().count() >= 5 && looks_like_email(&user.email);
    check(
        "email",
        (!email_ok).then(|| "Enter an email address like name@example.com.".into()),
    );
    let login_ok = user.login.chars().count() >= 5 && looks_like_email(&user.login);
    check(
        "login",
        (!login_ok).then(|| "A login looks like an email address, e.g. name@example.com.".into()),
    );
    if !user.mobile_phone.is_empty() {
        check("mobile_phone", phone_problem(&user.mobile_phone));
    }
    if let Some(password) = &user.password {
        use secrecy::ExposeSecret;
        let p = password.expose_secret();
        if p.chars().count() < 8 {
            check(
                "password",
                Some("Enter a password of at least 8 characters.".into()),
            );
        } else if p.trim() != p {
            check(
                "password",
                Some("The password cannot start or end with a space.".into()),
            );
        }
    }
    let unknown = |g: &String| !allowed_groups.iter().any(|a| &a.id == g);
    if user.group_ids.iter().any(unknown) {
        check("groups", Some("Choose groups from the list only.".into()));
    }
    errors
}

/// Okta's cause fields → the input's field names.
pub fn field_of(okta_field: &str) -> Option<&'static str> {
    Some(match okta_field {
        "login" => "login",
        "email" => "email",
        "firstName" => "first_name",
        "lastName" => "last_name",
        "mobilePhone" => "mobile_phone",
        "password" => "password",
        "secondEmail" => "secondEmail",
        "nickName" => "nickName",
        "title" => "title",
        "department" => "department",
        "primaryPhone" => "primaryPhone",
        _ => return None,
    })
}

/// Okta's validation causes as field errors (empty when Okta named no known field).
pub fn okta_field_errors(error: &crate::okta::OktaError) -> FieldErrors {
    let mut fields = FieldErrors::new();
    if error.kind == OktaErrorKind::Invalid {
        for cause in &error.causes {
            if let Some(field) = cause.field().and_then(field_of) {
                fields.insert(field, cause.message().to_string());
            }
        }
    }
    fields
}

impl Ops {
    /// The groups new users may be put in: `users.create_groups`, resolved in Okta.
    pub async fn create_groups(&self) -> Result<Vec<Group>, crate::okta::OktaError> {
        let all = self.okta.list_groups("", 200).await?;
        let listed = |g: &Group| {
            self.users
                .create_groups
                .iter()
                .any(|n| n == &g.profile.name)
        };
        Ok(all.into_iter().filter(listed).collect())
    }

    /// Creates a user (sent to Okta at most once).
    /// Records a create that could not start because what it needs from Okta (the group
    /// list) failed to load: the attempt is audited once, as failed, like any other.
    pub async fn create_not_started(
        &self,
        principal: &Principal,
        login: &str,
        why: &Why,
        error: crate::okta::OktaError,
    ) -> OpError {
        let snapshot = Target {
            id: None,
            login: Some(login.to_string()),
            name: None,
        };
        let attempt = Attempt::new(self, principal, Op::CreateUser, Some(why)).on_target(snapshot);
        attempt.failed(error, None, None).await
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        new: CreateUser,
        allowed_groups: &[Group],
        why: &Why,
    ) -> Result<Done<User>, OpError> {
        let login = if new.login.is_empty() {
            new.email.clone()
        } else {
            new.login.clone()
        };
        let new = CreateUser { login, ..new };
        let snapshot = Target {
            id: None,
            login: Some(new.login.clone()),
            name: Some(format!("{} {}", new.first_name, new.last_name)),
        };
        let mut attempt =
            Attempt::new(self, principal, Op::CreateUser, Some(why)).on_target(snapshot);
        if let Err(refusal) =
            guard::permission(principal, &self.policy, Op::CreateUser.permission())
        {
            return Err(attempt.refused(refusal, None).await);
        }
        let errors = validate_new_user(&new, allowed_groups);
        if !errors.is_empty() {
            return Err(OpError::Invalid(errors));
        }
        let request = NewUser {
            mobile_phone: (!new.mobile_phone.is_empty()).then(|| new.mobile_phone.clone()),
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
            login: new.login,
            password: new.password,
            group_ids: new.group_ids,
            activate: new.activate,
        };
        attempt.sending().await?;
        match self.okta.create_user(&request).await {
            Ok(created) => {
                let user = created.body;
                let attempt = attempt.on_target(super::record::target_of(&user));
                let success = Success {
                    status_after: Some(user.status.as_str().to_string()),
                    ..Success::new(user, created.request_id)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt.failed(e, None, None).await),
        }
    }
}

/// A partial profile update: only the attributes that change are sent.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub user: UserRef,
    /// Okta attribute name → new value (empty: remove the value).
    pub changes: BTreeMap<String, String>,
    /// The user's `lastUpdated` the caller saw (`If-Match`); refused when Okta's differs.
    pub expected_last_updated: Option<String>,
}

fn attribute_problem(name: &str, value: &str) -> Option<String> {
    let required = matches!(name, "firstName" | "lastName" | "email");
    if value.is_empty() {
        return required.then(|| "This attribute cannot be empty.".to_string());
    }
    if value.chars().count() > 100 {
        return Some("At most 100 characters.".into());
    }
    if input::has_four_byte_chars(value) || value.chars().any(char::is_control) {
        return Some("Okta does not accept characters such as emoji here.".into());
    }
    match name {
        "email" | "secondEmail" if !looks_like_email(value) => {
            Some("Enter an email address like name@example.com.".into())
        }
        "mobilePhone" | "primaryPhone" => phone_problem(value),
        _ => None,
    }
}

fn current_value(user: &User, name: &str) -> String {
    let p = &user.profile;
    let known = match name {
        "firstName" => p.first_name.clone(),
        "lastName" => p.last_name.clone(),
        "email" => p.email.clone(),
        "mobilePhone" => p.mobile_phone.clone(),
        "secondEmail" => p.second_email.clone(),
        _ => p
            .other
            .get(name)
            .and_then(|v| v.as_str().map(str::to_string)),
    };
    known.unwrap_or_default()
}

impl Ops {
    /// The editable attributes of a user, with their current values, in configured order.
    pub fn editable_profile(&self, user: &User) -> Vec<(String, String)> {
        let attributes = self.users.editable_attributes.iter();
        attributes
            .map(|a| (a.clone(), current_value(user, a)))
            .collect()
    }

    /// Changes only the attributes that differ from Okta's current profile.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        update: &ProfileUpdate,
        why: &Why,
    ) -> Result<Done<User>, OpError> {
        let op = Op::UpdateProfile;
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(update.user.as_str());
        let (user, _) = self
            .load_guarded(&mut attempt, principal, op, &update.user)
            .await?;
        if let Some(refusal) = self.profile_refusal(&user, update) {
            return Err(attempt.refused(refusal, Some(user)).await);
        }
        let changes = self.profile_changes(&user, update)?;
        let names: Vec<&str> = changes.keys().map(String::as_str).collect();
        let detail = format!("changed {}", names.join(", "));
        attempt.sending().await?;
        match self.okta.update_profile(&user.id, changes.clone()).await {
            Ok(updated) => {
                let success = Success {
                    before: Some(user),
                    ..Success::new(updated.body, updated.request_id).detail(detail)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt
                .failed(e, Some(format!("{detail}: failed")), Some(user))
                .await),
        }
    }

    fn profile_refusal(&self, user: &User, update: &ProfileUpdate) -> Option<Refusal> {
        if let Err(refusal) = guard::offered(Op::UpdateProfile, user) {
            return Some(refusal);
        }
        let stale = update
            .expected_last_updated
            .as_ref()
            .is_some_and(|seen| user.last_updated.as_ref() != Some(seen));
        if stale {
            return Some(Refusal::Stale);
        }
        let editable = |name: &String| self.users.editable_attributes.contains(name);
        let locked = update.changes.keys().find(|name| !editable(name));
        locked.map(|name| Refusal::AttributeNotEditable(name.clone()))
    }

    fn profile_changes(
        &self,
        user: &User,
        update: &ProfileUpdate,
    ) -> Result<BTreeMap<String, Value>, OpError> {
        let mut errors = FieldErrors::new();
        let mut changes = BTreeMap::new();
        for (name, value) in &update.changes {
            if current_value(user, name) == *value {
                continue;
            }
            let known = super::config::EDITABLE_ATTRIBUTES.iter().copied();
            let field = known.into_iter().find(|a| a == name).unwrap_or("profile");
            match attribute_problem(name, value) {
                Some(problem) => {
                    errors.insert(field, problem);
                }
                None if value.is_empty() => {
                    changes.insert(name.clone(), Value::Null);
                }
                None => {
                    changes.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        if !errors.is_empty() {
            return Err(OpError::Invalid(errors));
        }
        if changes.is_empty() {
            return Err(OpError::invalid(
                "profile",
                "Nothing to change: every value is as it was.",
            ));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CreateUser {
        CreateUser {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@example.com".into(),
            login: "ada@example.com".into(),
            activate: true,
            ..CreateUser::default()
        }
    }

    #[test]
    fn a_valid_new_user_has_no_errors() {
        assert!(validate_new_user(&valid(), &[]).is_empty());
    }

    #[test]
    fn every_field_of_a_new_user_is_checked() {
        let user = CreateUser {
            first_name: String::new(),
            last_name: "x".repeat(51),
            email: "not-an-email".into(),
            login: "ada 😀@example.com".into(),
            mobile_phone: "call me".into(),
            group_ids: vec!["00gNotAllowed".into()],
            password: Some(SecretString::from("short")),
            activate: true,
        };
        let errors = validate_new_user(&user, &[]);
        for field in [
            "first_name",
            "last_name",
            "email",
            "login",
            "mobile_phone",
            "groups",
            "password",
        ] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
        assert_eq!(errors["first_name"], "Enter the first name.");
        assert_eq!(
            errors["password"],
            "Enter a password of at least 8 characters."
        );
    }

    #[test]
    fn okta_cause_fields_map_to_input_fields() {
        assert_eq!(field_of("login"), Some("login"));
        assert_eq!(field_of("firstName"), Some("first_name"));
        assert_eq!(field_of("costCenter"), None);
    }

    #[test]
    fn profile_values_are_checked_per_attribute() {
        assert_eq!(
            attribute_problem("firstName", "").as_deref(),
            Some("This attribute cannot be empty.")
        );
        assert_eq!(attribute_problem("nickName", ""), None);
        assert!(attribute_problem("secondEmail", "nope").is_some());
        assert!(attribute_problem("mobilePhone", "call me").is_some());
        assert!(attribute_problem("title", "line\nbreak").is_some());
        assert_eq!(attribute_problem("title", "Head of Support"), None);
    }
}
