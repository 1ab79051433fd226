//! `/users/new`: create a user. Server-side validation with a message per field; a 422
//! re-render keeps what was typed (never the password); Okta's validation causes are shown
//! on the right field. A create is sent to Okta at most once (by the operations layer).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;

use super::outcome;
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::{AppError, okta_status};
use crate::okta::models::Group;
use crate::ops::users::{CreateUser, okta_field_errors};
use crate::ops::{FieldErrors, OpError, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
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

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewUserPage {
    ctx: PageCtx,
    form: CreateForm,
    why: WhyForm,
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
        let f = &self.form;
        vec![
            (
                "first_name",
                "First name *",
                &f.first_name,
                "text",
                "given-name",
            ),
            (
                "last_name",
                "Last name *",
                &f.last_name,
                "text",
                "family-name",
            ),
            ("email", "Email *", &f.email, "email", "off"),
            (
                "login",
                "Login (defaults to the email)",
                &f.login,
                "text",
                "off",
            ),
            (
                "mobile_phone",
                "Mobile phone",
                &f.mobile_phone,
                "tel",
                "off",
            ),
        ]
    }

    fn group_checked(&self, id: &str) -> bool {
        self.form.groups.iter().any(|g| g == id)
    }
}

impl CreateForm {
    fn from_form(data: &FormData) -> CreateForm {
        let email = data.get("email");
        let login = match data.get("login") {
            l if l.is_empty() => email.clone(),
            l => l,
        };
        CreateForm {
            first_name: data.get("first_name"),
            last_name: data.get("last_name"),
            email,
            login,
            mobile_phone: data.get("mobile_phone"),
            groups: data.all("groups"),
            activation: data.get("activation"),
            credential: data.get("credential"),
        }
    }

    /// The operation's input, and the problems with the two choices only this form has.
    fn input(&self, password: String) -> (CreateUser, FieldErrors) {
        let mut errors = FieldErrors::new();
        if self.activation != "activate" && self.activation != "stage" {
            errors.insert(
                "activation",
                "Choose whether to activate now or stage the user.".into(),
            );
        }
        if self.credential != "password" && self.credential != "email" {
            errors.insert("credential", "Choose how the user gets a password.".into());
        }
        let input = CreateUser {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            login: self.login.clone(),
            mobile_phone: self.mobile_phone.clone(),
            password: (self.credential == "password").then(|| SecretString::from(password)),
            group_ids: self.groups.clone(),
            activate: self.activation == "activate",
        };
        (input, errors)
    }
}

/// What a re-rendered form shows besides what was typed.
#[derive(Default)]
struct Problems {
    errors: FieldErrors,
    why_errors: WhyErrors,
    failure: Option<(String, String)>,
}

async fn render(
    agent: &Agent,
    (form, why): (CreateForm, WhyForm),
    groups: Vec<Group>,
    problems: Problems,
    status: StatusCode,
) -> Result<Response, AppError> {
    let page = NewUserPage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        form,
        why,
        errors: problems.errors,
        why_errors: problems.why_errors,
        groups,
        failure: problems.failure,
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn form(
    State(state): State<AppState>,
    agent: Require<perm::UsersCreate>,
) -> Result<Response, AppError> {
    let form = CreateForm {
        activation: "activate".into(),
        credential: "email".into(),
        ..CreateForm::default()
    };
    let groups = state.ops.create_groups().await?;
    let typed = (form, WhyForm::default());
    render(&agent, typed, groups, Problems::default(), StatusCode::OK).await
}

pub async fn create(
    State(state): State<AppState>,
    agent: Require<perm::UsersCreate>,
    data: FormData,
) -> Result<Response, AppError> {
    let form = CreateForm::from_form(&data);
    let why_form = WhyForm::from_form(&data);
    let groups = state.ops.create_groups().await?;
    let (input, mut errors) = form.input(data.raw("password"));
    let why = match (why_form.check(&state.ops), errors.is_empty()) {
        (Ok(why), true) => why,
        (why, _) => {
            errors.extend(crate::ops::users::validate_new_user(&input, &groups));
            let why_errors = why.err().unwrap_or_default();
            let (status, failure) = (StatusCode::UNPROCESSABLE_ENTITY, None);
            let problems = Problems {
                errors,
                why_errors,
                failure,
            };
            return render(&agent, (form, why_form), groups, problems, status).await;
        }
    };
    let created = state
        .ops
        .create_user(&agent.principal, input, &groups, &why);
    match created.await {
        Ok(done) => {
            let user = &done.value;
            let status = user.status.label().to_lowercase();
            let message = format!("{} was created ({status}).", user.display_name());
            outcome::flash_done(&agent, done.recorded, message).await?;
            Ok(Redirect::to(&format!("/users/{}", user.id)).into_response())
        }
        Err(e) => {
            let (problems, status) = problems_of(e)?;
            render(&agent, (form, why_form), groups, problems, status).await
        }
    }
}

/// Invalid input and Okta's validation causes go on the fields; other failures in a box.
fn problems_of(error: OpError) -> Result<(Problems, StatusCode), AppError> {
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    match error {
        OpError::Invalid(errors) => Ok((
            Problems {
                errors,
                ..Problems::default()
            },
            invalid,
        )),
        OpError::Okta { error, .. } => {
            let errors = okta_field_errors(&error);
            if !errors.is_empty() {
                return Ok((
                    Problems {
                        errors,
                        ..Problems::default()
                    },
                    invalid,
                ));
            }
            let failure = Some(super::search::okta_failure(&error));
            let status = okta_status(error.kind);
            Ok((
                Problems {
                    failure,
                    ..Problems::default()
                },
                status,
            ))
        }
        other => Err(outcome::into_app_error(other)),
    }
}
