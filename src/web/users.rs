//! The user pages: search, detail, create, the confirm-and-do actions, profile, groups and MFA.
//! Every handler here is an adapter: extract → build the operation's input → call `ops` →
//! render. No rule about who may change whom lives here.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod actions;
pub mod create;
pub mod detail;
pub mod factors;
pub mod groups;
pub mod outcome;
pub mod profile;
pub mod search;

/// Every user route.
pub fn routes() -> Router<AppState> {
    use factors::{activate, enroll, reset};
    Router::new()
        .route("/users", get(search::page).post(create::create))
        .route("/users/new", get(create::form))
        .route("/users/{id}", get(detail::page))
        .merge(actions::routes())
        .route(
            "/users/{id}/profile",
            get(profile::form).post(profile::save),
        )
        .route("/users/{id}/groups", get(groups::page).post(groups::add))
        .route(
            "/users/{id}/groups/{group}/remove",
            get(groups::confirm_remove).post(groups::remove),
        )
        .route("/users/{id}/factors", post(enroll::enroll))
        .route("/users/{id}/factors/new", get(enroll::new_form))
        .route(
            "/users/{id}/factors/reset-all",
            get(reset::reset_all_form).post(reset::reset_all),
        )
        .route(
            "/users/{id}/factors/{factor}/activate",
            post(activate::activate),
        )
        .route(
            "/users/{id}/factors/{factor}/resend",
            post(activate::resend),
        )
        .route(
            "/users/{id}/factors/{factor}/abandon",
            post(activate::abandon),
        )
        .route(
            "/users/{id}/factors/{factor}/reset",
            get(reset::reset_one_form).post(reset::reset_one),
        )
}
