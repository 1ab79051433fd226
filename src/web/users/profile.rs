//! `/users/{id}/profile`: edit the allow-listed profile attributes. Only what changed is sent;
//! the form carries the user's `lastUpdated`, so a change made meanwhile is refused rather
//! than overwritten.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::okta::OktaErrorKind;
use crate::okta::models::User;
use crate::ops::users::ProfileUpdate;
use crate::ops::{FieldErrors, Op, OpError, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::layout::PageCtx;
use crate::web::users::outcome::{self, Failed};

#[derive(Template)]
#[template(path = "users/profile.html")]
struct ProfilePage {
    ctx: PageCtx,
    user: User,
    /// (attribute, value as shown).
    fields: Vec<(String, String)>,
    errors: FieldErrors,
    why: WhyForm,
    why_errors: WhyErrors,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

impl ProfilePage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

/// The page, with the values as typed (or Okta's when `typed` is empty).
struct Shown {
    typed: BTreeMap<String, String>,
    errors: FieldErrors,
    why: WhyForm,
    why_errors: WhyErrors,
    failed: Failed,
}

async fn render(
    state: &AppState,
    agent: &Agent,
    user: User,
    shown: Shown,
) -> Result<Response, AppError> {
    let fields = state
        .ops
        .editable_profile(&user)
        .into_iter()
        .map(|(name, value)| {
            let typed = shown.typed.get(&name).cloned();
            (name, typed.unwrap_or(value))
        })
        .collect();
    let page = ProfilePage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        user,
        fields,
        errors: shown.errors,
        why: shown.why,
        why_errors: shown.why_errors,
        refusal: shown.failed.refusal,
        failure: shown.failed.failure,
    };
    Ok((shown.failed.status, Html(page.render()?)).into_response())
}

fn shown(status: StatusCode) -> Shown {
    Shown {
        typed: BTreeMap::new(),
        errors: FieldErrors::new(),
        why: WhyForm::default(),
        why_errors: WhyErrors::default(),
        failed: Failed::none(status),
    }
}

pub async fn form(
    State(state): State<AppState>,
    agent: Require<perm::UsersProfile>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (user, groups) = state.ops.read_user(&outcome::user_ref(&id)?).await?;
    let mut page = shown(StatusCode::OK);
    let refusal = state
        .ops
        .preview(&agent.principal, Op::UpdateProfile, &user, &groups);
    page.failed.refusal = refusal.map(|r| r.message());
    render(&state, &agent, user, page).await
}

/// The editable attributes as typed, and the `lastUpdated` the form was rendered with.
fn typed_profile(state: &AppState, data: &FormData) -> (BTreeMap<String, String>, Option<String>) {
    let editable = &state.ops.users_config().editable_attributes;
    let typed = data
        .0
        .iter()
        .filter(|(k, _)| editable.contains(k))
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    let last_updated = Some(data.get("last_updated")).filter(|v| !v.is_empty());
    (typed, last_updated)
}

pub async fn save(
    State(state): State<AppState>,
    agent: Require<perm::UsersProfile>,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let user = outcome::user_ref(&id)?;
    let (typed, last_updated) = typed_profile(&state, &data);
    let mut page = Shown {
        typed,
        why: WhyForm::from_form(&data),
        ..shown(StatusCode::UNPROCESSABLE_ENTITY)
    };
    let why = match page.why.check(&state.ops) {
        Ok(why) => why,
        Err(errors) => {
            page.why_errors = errors;
            let (user, _) = state.ops.read_user(&user).await?;
            return render(&state, &agent, user, page).await;
        }
    };
    let update = ProfileUpdate {
        user,
        changes: page.typed.clone(),
        expected_last_updated: last_updated,
    };
    match state
        .ops
        .update_profile(&agent.principal, &update, &why)
        .await
    {
        Ok(done) => {
            let message = format!("{} was updated.", done.value.display_name());
            outcome::flash_done(&agent, done.recorded, message).await?;
            Ok(Redirect::to(&format!("/users/{}", done.value.id)).into_response())
        }
        Err(e) => failed(&state, &agent, &update, page, e).await,
    }
}

async fn failed(
    state: &AppState,
    agent: &Agent,
    update: &ProfileUpdate,
    mut page: Shown,
    e: OpError,
) -> Result<Response, AppError> {
    if let OpError::Invalid(errors) = e {
        page.errors = errors;
        let (user, _) = state.ops.read_user(&update.user).await?;
        return render(state, agent, user, page).await;
    }
    if let OpError::Okta { error, .. } = &e
        && error.kind == OktaErrorKind::Invalid
    {
        for cause in &error.causes {
            let known = crate::ops::config::EDITABLE_ATTRIBUTES.iter().copied();
            let field = known
                .into_iter()
                .find(|a| Some(*a) == cause.field())
                .unwrap_or("profile");
            page.errors.insert(field, cause.message().to_string());
        }
    }
    let (failed, user) = outcome::for_form(e)?;
    page.failed = failed;
    render(state, agent, user, page).await
}
