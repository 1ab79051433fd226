//! `/users/new`: create a user. Server-side validation with a message per field; a 422
//! re-render keeps what was typed (never the password); Okta's validation causes are shown
//! on the right field. A create is sent to Okta at most once.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;

use crate::audit::{Action, NewEvent, Outcome, Target};
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::auth::session::{self, FlashKind};
use crate::error::{AppError, okta_status};
use crate::okta::OktaErrorKind;
use crate::okta::models::Group;
use crate::okta::users::NewUser;
use crate::state::AppState;
use crate::web::forms::{FormData, Why, WhyErrors, has_four_byte_chars};
use crate::web::layout::PageCtx;

/// What was typed (never the password).
#[derive(Debug, Clone, Default)]
pub struct CreateForm {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub login: String,
    pub mobile_phone: String,
    pub groups: Vec<String>,
    /// `activate` or `stage`.
    pub activation: String,
    /// `password` or `email`.
    pub credential: String,
}

pub type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewUserPage {
    ctx: PageCtx,
    form: CreateForm,
    why: Why,
    errors: FieldErrors,
    why_errors: WhyErrors,
    groups: Vec<Group>,
    failure: Option<(String, String)>,
}

impl NewUserPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }

    /// (name, label, value, input type, autocomplete) of the text inputs.
    fn text_fields(&self) -> Vec<(&'static str, &'static str, &str, &'static str, &'static str)> {
        vec![
            (
                "first_name",
                "First name *",
                &self.form.first_name,
                "text",
                "given-name",
            ),
            (
                "last_name",
                "Last name *",
                &self.form.last_name,
                "text",
                "family-name",
            ),
            ("email", "Email *", &self.form.email, "email", "off"),
            (
                "login",
                "Login (defaults to the email)",
                &self.form.login,
                "text",
                "off",
            ),
            (
                "mobile_phone",
                "Mobile phone",
                &self.form.mobile_phone,
                "tel",
                "off",
            ),
        ]
    }

    fn group_checked(&self, id: &str) -> bool {
        self.form.groups.iter().any(|g| g == id)
    }
}

fn looks_like_email(s: &str) -> bool {
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

/// Server-side validation, one message per field.
pub fn validate(form: &CreateForm, password: &str, allowed_groups: &[Group]) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let mut required = |field: &'static str, value: &str, label: &str, max: usize| {
        if value.is_empty() {
            errors.insert(field, format!("Enter the {label}."));
        } else if value.chars().count() > max {
            errors.insert(
                field,
                format!("The {label} can be at most {max} characters."),
            );
        } else if has_four_byte_chars(value) {
            errors.insert(
                field,
                "Okta does not accept characters such as emoji here.".into(),
            );
        }
    };
    required("first_name", &form.first_name, "first name", 50);
    required("last_name", &form.last_name, "last name", 50);
    required("email", &form.email, "email address", 100);
    required("login", &form.login, "login", 100);
    if !errors.contains_key("email")
        && (form.email.chars().count() < 5 || !looks_like_email(&form.email))
    {
        errors.insert(
            "email",
            "Enter an email address like name@example.com.".into(),
        );
    }
    if !errors.contains_key("login")
        && (form.login.chars().count() < 5 || !looks_like_email(&form.login))
    {
        errors.insert(
            "login",
            "A login looks like an email address, e.g. name@example.com.".into(),
        );
    }
    if !form.mobile_phone.is_empty()
        && (form.mobile_phone.len() > 100
            || !form
                .mobile_phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            || form
                .mobile_phone
                .chars()
                .filter(|c| c.is_ascii_digit())
                .count()
                < 6)
    {
        errors.insert(
            "mobile_phone",
            "Enter a phone number such as +1 555 0100.".into(),
        );
    }
    if form.activation != "activate" && form.activation != "stage" {
        errors.insert(
            "activation",
            "Choose whether to activate now or stage the user.".into(),
        );
    }
    match form.credential.as_str() {
        "password" => {
            if password.chars().count() < 8 {
                errors.insert(
                    "password",
                    "Enter a password of at least 8 characters.".into(),
                );
            } else if password.trim() != password {
                errors.insert(
                    "password",
                    "The password cannot start or end with a space.".into(),
                );
            }
        }
        "email" => {}
        _ => {
            errors.insert("credential", "Choose how the user gets a password.".into());
        }
    }
    if form
        .groups
        .iter()
        .any(|g| !allowed_groups.iter().any(|a| &a.id == g))
    {
        errors.insert("groups", "Choose groups from the list only.".into());
    }
    errors
}

/// The groups agents may add new users to (config allow-list, resolved in Okta).
async fn allowed_groups(state: &AppState) -> Result<Vec<Group>, AppError> {
    let all = state.okta.list_groups("", 200).await?;
    Ok(all
        .into_iter()
        .filter(|g| {
            state
                .config
                .users
                .create_groups
                .iter()
                .any(|n| n == &g.profile.name)
        })
        .collect())
}

pub async fn form(
    State(state): State<AppState>,
    agent: Require<perm::UsersCreate>,
) -> Result<Html<String>, AppError> {
    let page = NewUserPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        form: CreateForm {
            activation: "activate".into(),
            credential: "email".into(),
            ..CreateForm::default()
        },
        why: Why::default(),
        errors: FieldErrors::new(),
        why_errors: WhyErrors::default(),
        groups: allowed_groups(&state).await?,
        failure: None,
    };
    Ok(Html(page.render()?))
}

/// Okta's cause fields → form fields.
fn form_field(okta_field: &str) -> Option<&'static str> {
    Some(match okta_field {
        "login" => "login",
        "email" => "email",
        "firstName" => "first_name",
        "lastName" => "last_name",
        "mobilePhone" => "mobile_phone",
        "password" => "password",
        _ => return None,
    })
}

pub async fn create(
    State(state): State<AppState>,
    agent: Require<perm::UsersCreate>,
    data: FormData,
) -> Result<Response, AppError> {
    let email = data.get("email");
    let login = match data.get("login") {
        l if l.is_empty() => email.clone(),
        l => l,
    };
    let form = CreateForm {
        first_name: data.get("first_name"),
        last_name: data.get("last_name"),
        email,
        login,
        mobile_phone: data.get("mobile_phone"),
        groups: data.all("groups"),
        activation: data.get("activation"),
        credential: data.get("credential"),
    };
    let password = data.raw("password");
    let why = Why::from_form(&data);
    let groups = allowed_groups(&state).await?;
    let errors = validate(&form, &password, &groups);
    let why_errors = why.validate(&state);
    let render = |form: CreateForm,
                  why: Why,
                  errors: FieldErrors,
                  why_errors: WhyErrors,
                  groups: Vec<Group>,
                  failure: Option<(String, String)>,
                  status: StatusCode| {
        let agent = &agent;
        let state = &state;
        async move {
            let page = NewUserPage {
                ctx: PageCtx::for_agent(agent, state, "users").await?,
                form,
                why,
                errors,
                why_errors,
                groups,
                failure,
            };
            Ok::<Response, AppError>((status, Html(page.render()?)).into_response())
        }
    };
    if !errors.is_empty() || why_errors.any() {
        return render(
            form,
            why,
            errors,
            why_errors,
            groups,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let new_user = NewUser {
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        email: form.email.clone(),
        login: form.login.clone(),
        mobile_phone: (!form.mobile_phone.is_empty()).then(|| form.mobile_phone.clone()),
        password: (form.credential == "password").then(|| SecretString::from(password)),
        group_ids: form.groups.clone(),
        activate: form.activation == "activate",
    };
    let snapshot = Target {
        id: None,
        login: Some(form.login.clone()),
        name: Some(format!("{} {}", form.first_name, form.last_name)),
    };
    let event = |outcome: Outcome, target: Target| {
        NewEvent::new(
            Action::UserCreate,
            outcome,
            agent.actor(),
            agent.meta().clone(),
        )
        .permission(perm_name())
        .target(target)
        .why(Some(why.reason.clone()), why.ticket_opt())
    };
    match state.okta.create_user(&new_user).await {
        Ok(created) => {
            let user = created.body;
            let target = Target {
                id: Some(user.id.clone()),
                ..snapshot
            };
            let recorded = state
                .audit
                .record(
                    event(Outcome::Success, target)
                        .okta(created.request_id.clone(), None)
                        .statuses(None, Some(user.status.as_str().into())),
                )
                .await;
            if recorded.is_err() {
                session::push_flash(
                    &agent.session,
                    FlashKind::Warning,
                    format!(
                        "The user was created but the audit record could not be written. Tell an administrator (request id {}).",
                        agent.meta().request_id
                    ),
                )
                .await?;
            }
            session::push_flash(
                &agent.session,
                FlashKind::Success,
                format!(
                    "{} was created ({}).",
                    user.display_name(),
                    user.status.label().to_lowercase()
                ),
            )
            .await?;
            Ok(Redirect::to(&format!("/users/{}", user.id)).into_response())
        }
        Err(e) => {
            state
                .audit
                .record(
                    event(Outcome::Failure, snapshot)
                        .okta(e.request_id.clone(), e.code.clone())
                        .detail(e.summary.clone()),
                )
                .await?;
            let mut field_errors = FieldErrors::new();
            if e.kind == OktaErrorKind::Invalid {
                for cause in &e.causes {
                    if let Some(field) = cause.field().and_then(form_field) {
                        field_errors.insert(field, cause.message().to_string());
                    }
                }
            }
            let status = if field_errors.is_empty() {
                okta_status(e.kind)
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let failure = field_errors
                .is_empty()
                .then(|| crate::web::users::search::okta_failure(&e));
            render(
                form,
                why,
                field_errors,
                WhyErrors::default(),
                groups,
                failure,
                status,
            )
            .await
        }
    }
}

fn perm_name() -> &'static str {
    crate::auth::policy::Permission::UsersCreate.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CreateForm {
        CreateForm {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@example.com".into(),
            login: "ada@example.com".into(),
            mobile_phone: String::new(),
            groups: vec![],
            activation: "activate".into(),
            credential: "email".into(),
        }
    }

    #[test]
    fn a_valid_form_has_no_errors() {
        assert!(validate(&valid(), "", &[]).is_empty());
    }

    #[test]
    fn every_field_is_checked() {
        let form = CreateForm {
            first_name: String::new(),
            last_name: "x".repeat(51),
            email: "not-an-email".into(),
            login: "ada 😀@example.com".into(),
            mobile_phone: "call me".into(),
            groups: vec!["00gNotAllowed".into()],
            activation: "maybe".into(),
            credential: "password".into(),
        };
        let errors = validate(&form, "short", &[]);
        for field in [
            "first_name",
            "last_name",
            "email",
            "login",
            "mobile_phone",
            "groups",
            "activation",
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
    fn okta_cause_fields_map_to_form_fields() {
        assert_eq!(form_field("login"), Some("login"));
        assert_eq!(form_field("firstName"), Some("first_name"));
        assert_eq!(form_field("nickName"), None);
    }
}
