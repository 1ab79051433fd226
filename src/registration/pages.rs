//! The pages: `/register`, `/forgot-password`, `/check-email`. They work without
//! JavaScript; a refused form re-renders with what was typed and why.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::context::{Ctx, Shared, asset_url};
use super::submit::{Kind, Refused, Sender, Submission};

pub struct AssetUrls {
    pub css: String,
    pub js: String,
    pub favicon: String,
}

fn assets() -> AssetUrls {
    AssetUrls {
        css: asset_url("app.css"),
        js: asset_url("registration.js"),
        favicon: asset_url("favicon.svg"),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub altcha: String,
    #[serde(default)]
    pub website: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub altcha: String,
    #[serde(default)]
    pub website: String,
}

#[derive(Template)]
#[template(path = "registration/register.html")]
pub struct RegisterPage {
    assets: AssetUrls,
    request_id: String,
    form: RegisterForm,
    errors: BTreeMap<String, String>,
    notice: Option<String>,
}

impl RegisterPage {
    fn fields(&self) -> [(&'static str, &'static str, &str, &'static str, &'static str); 3] {
        [
            (
                "first_name",
                "First name",
                &self.form.first_name,
                "text",
                "given-name",
            ),
            (
                "last_name",
                "Last name",
                &self.form.last_name,
                "text",
                "family-name",
            ),
            ("email", "Email", &self.form.email, "email", "email"),
        ]
    }

    fn error(&self, name: &str) -> Option<&String> {
        self.errors.get(name)
    }
}

#[derive(Template)]
#[template(path = "registration/forgot.html")]
pub struct ForgotPage {
    assets: AssetUrls,
    request_id: String,
    email: String,
    errors: BTreeMap<String, String>,
    notice: Option<String>,
}

impl ForgotPage {
    fn error(&self, name: &str) -> Option<&String> {
        self.errors.get(name)
    }
}

#[derive(Template)]
#[template(path = "registration/check_email.html")]
pub struct CheckEmailPage {
    assets: AssetUrls,
    request_id: String,
}

#[derive(Template)]
#[template(path = "registration/error.html")]
pub struct ErrorPage {
    assets: AssetUrls,
    request_id: String,
    title: &'static str,
    message: String,
}

fn html(status: StatusCode, page: Result<String, askama::Error>, request_id: &str) -> Response {
    match page {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(request_id = %request_id, error = %e, "a registration page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

pub fn error_page(ctx: &Ctx, status: StatusCode, title: &'static str, message: String) -> Response {
    let page = ErrorPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
        title,
        message,
    };
    html(status, page.render(), &ctx.request_id)
}

pub async fn not_found(ctx: Ctx) -> Response {
    error_page(
        &ctx,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page here.".into(),
    )
}

pub async fn check_email(ctx: Ctx) -> Response {
    let page = CheckEmailPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
    };
    html(StatusCode::OK, page.render(), &ctx.request_id)
}

pub async fn register_page(ctx: Ctx) -> Response {
    let page = RegisterPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
        form: RegisterForm::default(),
        errors: BTreeMap::new(),
        notice: None,
    };
    html(StatusCode::OK, page.render(), &ctx.request_id)
}

pub async fn forgot_page(ctx: Ctx) -> Response {
    let page = ForgotPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
        email: String::new(),
        errors: BTreeMap::new(),
        notice: None,
    };
    html(StatusCode::OK, page.render(), &ctx.request_id)
}

/// A form the body limit, the content type or the encoding refused.
fn rejected(ctx: &Ctx, rejection: &FormRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = "What was sent is larger than this form accepts.".to_string();
        return error_page(ctx, StatusCode::PAYLOAD_TOO_LARGE, "Too large", message);
    }
    let message = "The form could not be read. Go back and try again.".to_string();
    error_page(ctx, StatusCode::BAD_REQUEST, "Bad request", message)
}

/// A browser form from another site is refused (a page of ours always says same-origin).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
}

/// How a refusal is shown on a page: status, notice, `Retry-After`.
fn shown(refused: &Refused) -> (StatusCode, Option<String>, Option<u64>) {
    match refused {
        Refused::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, None, None),
        Refused::Limited(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many attempts. Please try again in {} minute(s).",
                wait.0.div_ceil(60).max(1)
            )),
            Some(wait.0),
        ),
        Refused::Honeypot | Refused::Pow(_) => (
            StatusCode::BAD_REQUEST,
            Some("The form could not be accepted. Please try again.".into()),
            None,
        ),
        Refused::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The service is not available right now. Please try again later.".into()),
            None,
        ),
    }
}

fn with_retry_after(mut response: Response, wait: Option<u64>) -> Response {
    if let Some(wait) = wait.and_then(|w| HeaderValue::from_str(&w.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, wait);
    }
    response
}

/// The form, unless it came from another site or could not be read (then the error page).
fn same_site_form<T>(
    ctx: &Ctx,
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
) -> Result<T, Box<Response>> {
    match form {
        Ok(Form(form)) if !cross_site(headers) => Ok(form),
        Ok(_) => Err(Box::new(error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Refused",
            "Forms are accepted from this site only.".into(),
        ))),
        Err(rejection) => Err(Box::new(rejected(ctx, &rejection))),
    }
}

type Shown = (
    StatusCode,
    Option<String>,
    Option<u64>,
    BTreeMap<String, String>,
);

/// Sends a page's submission: the redirect to "check your email", or what to show again.
async fn send(
    state: &Shared,
    ctx: &Ctx,
    kind: Kind,
    submission: &Submission,
) -> Result<Response, Shown> {
    let by = Sender {
        ip: ctx.ip,
        request_id: &ctx.request_id,
        from_page: true,
    };
    let refused = match state.submit(kind, submission, &by).await {
        Ok(()) => return Ok(Redirect::to("/check-email").into_response()),
        Err(refused) => refused,
    };
    let (status, notice, wait) = shown(&refused);
    let errors = match refused {
        Refused::Invalid(errors) => errors,
        _ => BTreeMap::new(),
    };
    Err((status, notice, wait, errors))
}

pub async fn register(
    State(state): State<Shared>,
    ctx: Ctx,
    headers: HeaderMap,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let mut form = match same_site_form(&ctx, &headers, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let submission = Submission {
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        email: form.email.clone(),
        altcha: Some(std::mem::take(&mut form.altcha)),
        website: std::mem::take(&mut form.website),
    };
    let (status, notice, wait, errors) = match send(&state, &ctx, Kind::Register, &submission).await
    {
        Ok(done) => return done,
        Err(shown) => shown,
    };
    let page = RegisterPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
        form,
        errors,
        notice,
    };
    with_retry_after(html(status, page.render(), &ctx.request_id), wait)
}

pub async fn forgot(
    State(state): State<Shared>,
    ctx: Ctx,
    headers: HeaderMap,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Response {
    let form = match same_site_form(&ctx, &headers, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let submission = Submission {
        email: form.email.clone(),
        altcha: Some(form.altcha),
        website: form.website,
        ..Submission::default()
    };
    let (status, notice, wait, errors) = match send(&state, &ctx, Kind::Recover, &submission).await
    {
        Ok(done) => return done,
        Err(shown) => shown,
    };
    let page = ForgotPage {
        assets: assets(),
        request_id: ctx.request_id.clone(),
        email: form.email,
        errors,
        notice,
    };
    with_retry_after(html(status, page.render(), &ctx.request_id), wait)
}
