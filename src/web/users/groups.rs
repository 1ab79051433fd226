//! `/users/{id}/groups`: the user's groups, removal of allow-listed ones (with a confirmation)
//! and adding to an allow-listed group.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::okta::models::{Group, User};
use crate::ops::groups::Membership;
use crate::ops::{Op, UserRef, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::layout::PageCtx;
use crate::web::users::outcome::{self, Failed};

#[derive(Template)]
#[template(path = "users/groups.html")]
struct GroupsPage {
    ctx: PageCtx,
    user: User,
    /// The user's groups, each with whether the portal may remove the user from it.
    member_of: Vec<(Group, bool)>,
    /// Allow-listed groups the user is not in.
    addable: Vec<Group>,
    /// The group of a removal being confirmed.
    removing: Option<Group>,
    chosen: String,
    group_error: Option<String>,
    why: WhyForm,
    why_errors: WhyErrors,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

/// What the page shows besides the user and their groups.
struct Shown {
    removing: Option<String>,
    chosen: String,
    why: WhyForm,
    why_errors: WhyErrors,
    failed: Failed,
}

fn shown(status: StatusCode) -> Shown {
    Shown {
        removing: None,
        chosen: String::new(),
        why: WhyForm::default(),
        why_errors: WhyErrors::default(),
        failed: Failed::none(status),
    }
}

async fn render(
    state: &AppState,
    agent: &Agent,
    user: &UserRef,
    shown: Shown,
) -> Result<Response, AppError> {
    let ((user, groups), allowed) =
        tokio::try_join!(state.ops.read_user(user), state.ops.membership_groups())?;
    let preview = state
        .ops
        .preview(&agent.principal, Op::AddToGroup, &user, &groups);
    let refusal = shown.failed.refusal.or(preview.map(|r| r.message()));
    let removing = shown
        .removing
        .and_then(|gid| groups.iter().find(|g| g.id == gid).cloned());
    let addable = allowed
        .iter()
        .filter(|a| !groups.iter().any(|g| g.id == a.id))
        .cloned()
        .collect();
    let member_of = groups.into_iter().map(|g| {
        let changeable = allowed.iter().any(|a| a.id == g.id);
        (g, changeable)
    });
    let page = GroupsPage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        user,
        member_of: member_of.collect(),
        addable,
        removing,
        chosen: shown.chosen,
        group_error: None,
        why: shown.why,
        why_errors: shown.why_errors,
        refusal,
        failure: shown.failed.failure,
    };
    Ok((shown.failed.status, Html(page.render()?)).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    agent: Require<perm::UsersGroups>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    render(
        &state,
        &agent,
        &outcome::user_ref(&id)?,
        shown(StatusCode::OK),
    )
    .await
}

pub async fn confirm_remove(
    State(state): State<AppState>,
    agent: Require<perm::UsersGroups>,
    Path((id, group)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let page = Shown {
        removing: Some(group),
        ..shown(StatusCode::OK)
    };
    render(&state, &agent, &outcome::user_ref(&id)?, page).await
}

pub async fn add(
    State(state): State<AppState>,
    agent: Require<perm::UsersGroups>,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    change(&state, &agent, &id, data.get("group"), true, &data).await
}

pub async fn remove(
    State(state): State<AppState>,
    agent: Require<perm::UsersGroups>,
    Path((id, group)): Path<(String, String)>,
    data: FormData,
) -> Result<Response, AppError> {
    change(&state, &agent, &id, group, false, &data).await
}

/// The page as typed, for a re-render after a problem.
fn typed(data: &FormData, group_id: &str, member: bool) -> Shown {
    Shown {
        why: WhyForm::from_form(data),
        chosen: group_id.to_string(),
        removing: (!member).then(|| group_id.to_string()),
        ..shown(StatusCode::UNPROCESSABLE_ENTITY)
    }
}

async fn change(
    state: &AppState,
    agent: &Agent,
    id: &str,
    group_id: String,
    member: bool,
    data: &FormData,
) -> Result<Response, AppError> {
    let user = outcome::user_ref(id)?;
    let mut page = typed(data, &group_id, member);
    let why = page.why.check(&state.ops);
    let Ok(why) = why.map_err(|errors| page.why_errors = errors) else {
        return render(state, agent, &user, page).await;
    };
    let change = Membership {
        user: user.clone(),
        group_id,
    };
    match state
        .ops
        .set_membership(&agent.principal, &change, member, &why)
        .await
    {
        Ok(done) => {
            let how = if member { "added to" } else { "removed from" };
            let group = done.value.profile.name.as_str();
            let message = format!("{} was {how} {group}.", done.user_name());
            outcome::flash_done(agent, done.recorded, message).await?;
            Ok(Redirect::to(&format!("/users/{id}/groups")).into_response())
        }
        Err(e) => {
            let (failed, _) = outcome::for_form(e)?;
            page.failed = failed;
            render(state, agent, &user, page).await
        }
    }
}
