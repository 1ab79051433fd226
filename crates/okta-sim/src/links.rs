//! Activation and password-recovery emails, and the pages their links open.
//!
//! Okta mails a one-time link when a user is created or activated without a password
//! (`PROVISIONED`, the welcome flow) and when a password reset is started with
//! `sendEmail=true` (`RECOVERY`). The simulator puts those emails in its outbox
//! ([`super::outbox`]) and serves the links: `GET/POST {base}/tokens/{token}/verify` (choose a
//! password; the user becomes `ACTIVE`) and `GET/POST {base}/signin/reset-password/{token}`
//! (choose a new password; `RECOVERY` becomes `ACTIVE`). A link works once, until it expires;
//! the new password must pass the simulator's password policy. With `sendEmail=false` the
//! URL Okta returns in the response body works the same way.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::outbox::{Channel, OutboxMessage};
use super::store::{Store, UserStatus};
use super::syslog::{self, EventSource, user_target};
use super::{SimState, random_token};

/// An activation link stays valid for seven days (Okta's default), a recovery link one hour.
const ACTIVATION_LIFETIME: Duration = Duration::days(7);
const RECOVERY_LIFETIME: Duration = Duration::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    Recovery,
}

/// A one-time token behind an emailed (or returned) link.
#[derive(Debug, Clone)]
pub struct EmailToken {
    pub user_id: String,
    pub purpose: Purpose,
    pub expires_at: OffsetDateTime,
}

/// A fresh one-time link for the user (earlier links of the same purpose stop working).
pub fn issue(store: &mut Store, base: &str, user_id: &str, purpose: Purpose) -> String {
    store
        .email_tokens
        .retain(|_, t| !(t.user_id == user_id && t.purpose == purpose));
    let token = random_token(20);
    let lifetime = match purpose {
        Purpose::Activation => ACTIVATION_LIFETIME,
        Purpose::Recovery => RECOVERY_LIFETIME,
    };
    store.email_tokens.insert(
        token.clone(),
        EmailToken {
            user_id: user_id.to_string(),
            purpose,
            expires_at: OffsetDateTime::now_utc() + lifetime,
        },
    );
    match purpose {
        Purpose::Activation => format!("{base}/tokens/{token}/verify"),
        Purpose::Recovery => format!("{base}/signin/reset-password/{token}"),
    }
}

/// Issues a link and "sends" it by email to the user's primary email address (the outbox).
pub fn send(store: &mut Store, base: &str, user_id: &str, purpose: Purpose) {
    let Some(email) = store.users.get(user_id).map(|u| u.email.clone()) else {
        return;
    };
    let link = issue(store, base, user_id, purpose);
    let now = OffsetDateTime::now_utc();
    let (text, lifetime) = match purpose {
        Purpose::Activation => (
            format!("Welcome! Activate your account and choose a password: {link}"),
            ACTIVATION_LIFETIME,
        ),
        Purpose::Recovery => (
            format!(
                "A password reset was requested for your account. Choose a new password: {link}"
            ),
            RECOVERY_LIFETIME,
        ),
    };
    store.outbox.push(OutboxMessage {
        sent_at: now,
        expires_at: now + lifetime,
        user_id: user_id.to_string(),
        factor_id: String::new(),
        channel: Channel::Email,
        destination: email,
        code: String::new(),
        text,
        link: Some(link),
    });
}

#[derive(Template)]
#[template(path = "okta_sim/set_password.html")]
struct SetPasswordPage {
    title: &'static str,
    login: String,
    error: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn title(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Activation => "Activate your account",
        Purpose::Recovery => "Reset your password",
    }
}

fn render(status: StatusCode, page: SetPasswordPage) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn gone() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "This link is invalid or has expired.",
    )
        .into_response()
}

/// The user's login when `token` is a live link of `purpose`.
fn lookup(state: &SimState, token: &str, purpose: Purpose) -> Option<(String, String)> {
    let store = state.store();
    let t = store.email_tokens.get(token)?;
    if t.purpose != purpose || t.expires_at <= OffsetDateTime::now_utc() {
        return None;
    }
    let user = store.users.get(&t.user_id)?;
    let expected = match purpose {
        Purpose::Activation => UserStatus::Provisioned,
        Purpose::Recovery => UserStatus::Recovery,
    };
    (user.status == expected).then(|| (user.id.clone(), user.login.clone()))
}

fn show(state: &SimState, token: &str, purpose: Purpose) -> Response {
    match lookup(state, token, purpose) {
        Some((_, login)) => render(
            StatusCode::OK,
            SetPasswordPage {
                title: title(purpose),
                login,
                error: None,
                done: false,
            },
        ),
        None => gone(),
    }
}

pub async fn activation_page(State(state): State<SimState>, Path(token): Path<String>) -> Response {
    show(&state, &token, Purpose::Activation)
}

pub async fn reset_page(State(state): State<SimState>, Path(token): Path<String>) -> Response {
    show(&state, &token, Purpose::Recovery)
}

pub async fn activate(
    State(state): State<SimState>,
    Path(token): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> Response {
    complete(&state, &token, Purpose::Activation, form)
}

pub async fn reset(
    State(state): State<SimState>,
    Path(token): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> Response {
    complete(&state, &token, Purpose::Recovery, form)
}

fn complete(state: &SimState, token: &str, purpose: Purpose, form: SetPasswordForm) -> Response {
    let Some((user_id, login)) = lookup(state, token, purpose) else {
        return gone();
    };
    let problem = if form.password != form.confirm {
        Some("The passwords do not match.".to_string())
    } else {
        super::users::password_policy_message(&form.password, &login)
    };
    if let Some(error) = problem {
        let page = SetPasswordPage {
            title: title(purpose),
            login,
            error: Some(error),
            done: false,
        };
        return render(StatusCode::UNPROCESSABLE_ENTITY, page);
    }
    let mut store = state.store();
    store.email_tokens.remove(token);
    let now = OffsetDateTime::now_utc();
    let Some(user) = store.users.get_mut(&user_id) else {
        return gone();
    };
    user.password = Some(form.password);
    user.password_changed = Some(now);
    user.status = UserStatus::Active;
    user.status_changed = Some(now);
    user.activated.get_or_insert(now);
    user.last_updated = now;
    let target = user_target(user);
    let source = EventSource {
        request_id: super::request_id(),
        actor: target.clone(),
        user_agent: String::new(),
        ip: "127.0.0.1".into(),
        path: String::new(),
        query: None,
        api_token_id: None,
    };
    syslog::append(
        &mut store,
        &source,
        "user.account.update_password",
        vec![target],
    );
    drop(store);
    let page = SetPasswordPage {
        title: title(purpose),
        login,
        error: None,
        done: true,
    };
    render(StatusCode::OK, page)
}
