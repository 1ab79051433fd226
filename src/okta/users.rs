//! Users API: list and search, get, create, update, lifecycle, delete, sessions, groups.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::client::{OktaClient, OktaRequest, OktaResponse};
use super::error::OktaError;
use super::models::{Group, LifecycleResult, User};
use super::search::Search;

/// One page of users and the cursor of the next page (taken from the `next` link only).
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_after: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Default)]
pub struct UserQuery {
    /// `search`: the recommended mode (includes deactivated users).
    pub search: Option<Search>,
    /// `q`: prefix match on first name, last name and email (no paging, no deactivated).
    pub q: Option<String>,
    /// `filter`: the restricted `eq` language of OKTA-FACTS.md §5.4.
    pub filter: Option<Search>,
    pub limit: Option<u32>,
    /// The opaque cursor of a previous page's `next` link.
    pub after: Option<String>,
    pub sort_by: Option<&'static str>,
}

/// A user to create (OKTA-FACTS.md §5.6).
pub struct NewUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub login: String,
    pub mobile_phone: Option<String>,
    pub password: Option<SecretString>,
    pub group_ids: Vec<String>,
    pub activate: bool,
}

/// The lifecycle operations of OKTA-FACTS.md §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Activate,
    Reactivate,
    Deactivate,
    Suspend,
    Unsuspend,
    Unlock,
    ResetPassword,
    ExpirePassword,
    ResetFactors,
}

impl Lifecycle {
    pub fn path(self) -> &'static str {
        match self {
            Lifecycle::Activate => "activate",
            Lifecycle::Reactivate => "reactivate",
            Lifecycle::Deactivate => "deactivate",
            Lifecycle::Suspend => "suspend",
            Lifecycle::Unsuspend => "unsuspend",
            Lifecycle::Unlock => "unlock",
            Lifecycle::ResetPassword => "reset_password",
            Lifecycle::ExpirePassword => "expire_password",
            Lifecycle::ResetFactors => "reset_factors",
        }
    }
}

fn user_path(id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/api/v1/users/{encoded}")
}

fn group_path(id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/api/v1/groups/{encoded}")
}

fn after_param(next: Option<&url::Url>) -> Option<String> {
    next?
        .query_pairs()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.into_owned())
}

impl OktaClient {
    pub async fn list_users(&self, query: UserQuery) -> Result<UserPage, OktaError> {
        let mut request = OktaRequest::get("/api/v1/users");
        if let Some(search) = &query.search {
            request = request.query("search", search.to_string());
        }
        if let Some(q) = &query.q {
            request = request.query("q", q.clone());
        }
        if let Some(filter) = &query.filter {
            request = request.query("filter", filter.to_string());
        }
        if let Some(limit) = query.limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(after) = query.after {
            request = request.query("after", after);
        }
        if let Some(sort_by) = query.sort_by {
            request = request.query("sortBy", sort_by).query("sortOrder", "asc");
        }
        self.user_page(request).await
    }

    /// A page of users, shared with identical reads running now or a moment ago (`reads`).
    async fn user_page(&self, request: OktaRequest) -> Result<UserPage, OktaError> {
        let key = request.cache_key();
        self.reads()
            .page(key, async {
                let response: OktaResponse<Vec<User>> = self.send(request).await?;
                Ok(UserPage {
                    next_after: after_param(response.next.as_ref()),
                    users: response.body,
                    request_id: response.request_id,
                })
            })
            .await
    }

    /// By id or login; one call for concurrent reads of the same user.
    pub async fn get_user(&self, id_or_login: &str) -> Result<User, OktaError> {
        let load = async {
            Ok(self
                .send(OktaRequest::get(user_path(id_or_login)))
                .await?
                .body)
        };
        self.reads().user(id_or_login, load).await
    }

    /// Creates a user. Never retried: a create must not be sent twice.
    pub async fn create_user(&self, new: &NewUser) -> Result<OktaResponse<User>, OktaError> {
        let mut profile = json!({
            "firstName": new.first_name,
            "lastName": new.last_name,
            "email": new.email,
            "login": new.login,
        });
        if let Some(phone) = &new.mobile_phone {
            profile["mobilePhone"] = json!(phone);
        }
        let mut body = json!({ "profile": profile });
        if let Some(password) = &new.password {
            body["credentials"] = json!({ "password": { "value": password.expose_secret() } });
        }
        if !new.group_ids.is_empty() {
            body["groupIds"] = json!(new.group_ids);
        }
        let request = OktaRequest::post("/api/v1/users", Some(body))
            .query("activate", new.activate.to_string());
        self.send(request).await
    }

    /// Partial profile update (`POST /api/v1/users/{id}`).
    pub async fn update_profile(
        &self,
        id: &str,
        changes: BTreeMap<String, Value>,
    ) -> Result<OktaResponse<User>, OktaError> {
        self.send(OktaRequest::post(
            user_path(id),
            Some(json!({ "profile": changes })),
        ))
        .await
    }

    /// Runs a lifecycle operation. `send_email` is passed where the operation takes it.
    pub async fn lifecycle(
        &self,
        id: &str,
        operation: Lifecycle,
        send_email: Option<bool>,
    ) -> Result<OktaResponse<LifecycleResult>, OktaError> {
        let mut request = OktaRequest::post(
            format!("{}/lifecycle/{}", user_path(id), operation.path()),
            None,
        );
        if let Some(send) = send_email {
            request = request.query("sendEmail", send.to_string());
        }
        let response: OktaResponse<Option<Value>> = self.send(request).await?;
        let result = match response.body {
            Some(value @ Value::Object(_)) => serde_json::from_value(value).unwrap_or_default(),
            _ => LifecycleResult::default(),
        };
        Ok(OktaResponse {
            body: result,
            request_id: response.request_id,
            next: None,
        })
    }

    /// `DELETE /api/v1/users/{id}`: deactivates first, deletes for good when already
    /// DEPROVISIONED. Never retried.
    pub async fn delete_user(&self, id: &str) -> Result<OktaResponse<()>, OktaError> {
        let response: OktaResponse<Option<Value>> =
            self.send(OktaRequest::delete(user_path(id))).await?;
        Ok(OktaResponse {
            body: (),
            request_id: response.request_id,
            next: None,
        })
    }

    /// Ends the user's Okta sessions; with `oauth_tokens` also revokes the OAuth tokens
    /// issued to them.
    pub async fn clear_sessions(
        &self,
        id: &str,
        oauth_tokens: bool,
    ) -> Result<OktaResponse<()>, OktaError> {
        let request = OktaRequest::delete(format!("{}/sessions", user_path(id)))
            .query("oauthTokens", oauth_tokens.to_string());
        let response: OktaResponse<Option<Value>> = self.send(request).await?;
        Ok(OktaResponse {
            body: (),
            request_id: response.request_id,
            next: None,
        })
    }

    pub async fn user_groups(&self, id: &str) -> Result<Vec<Group>, OktaError> {
        Ok(self
            .send(OktaRequest::get(format!("{}/groups", user_path(id))))
            .await?
            .body)
    }

    /// One page of a group's members (`GET /api/v1/groups/{id}/users`).
    pub async fn group_members(
        &self,
        group_id: &str,
        limit: u32,
        after: Option<String>,
    ) -> Result<UserPage, OktaError> {
        let encoded: String = url::form_urlencoded::byte_serialize(group_id.as_bytes()).collect();
        let mut request = OktaRequest::get(format!("/api/v1/groups/{encoded}/users"))
            .query("limit", limit.to_string());
        if let Some(after) = after {
            request = request.query("after", after);
        }
        self.user_page(request).await
    }

    pub async fn get_group(&self, group_id: &str) -> Result<Group, OktaError> {
        Ok(self
            .send(OktaRequest::get(group_path(group_id)))
            .await?
            .body)
    }

    /// `PUT` (add) or `DELETE` (remove) `/api/v1/groups/{gid}/users/{uid}`.
    pub async fn set_membership(
        &self,
        group_id: &str,
        user_id: &str,
        member: bool,
    ) -> Result<OktaResponse<()>, OktaError> {
        let path = format!(
            "{}/users/{}",
            group_path(group_id),
            url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect::<String>()
        );
        let request = if member {
            OktaRequest::put(path)
        } else {
            OktaRequest::delete(path)
        };
        let response: OktaResponse<Option<Value>> = self.send(request).await?;
        Ok(OktaResponse {
            body: (),
            request_id: response.request_id,
            next: None,
        })
    }

    /// Groups whose name starts with `q` (all groups when `q` is empty).
    pub async fn list_groups(&self, q: &str, limit: u32) -> Result<Vec<Group>, OktaError> {
        let mut request = OktaRequest::get("/api/v1/groups").query("limit", limit.to_string());
        if !q.is_empty() {
            request = request.query("q", q);
        }
        let load = async { Ok(self.send(request).await?.body) };
        self.reads().groups(format!("{limit}|{q}"), load).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_url_encoded_in_paths() {
        assert_eq!(
            user_path("ada+x@example.com"),
            "/api/v1/users/ada%2Bx%40example.com"
        );
        assert_eq!(user_path("00u1"), "/api/v1/users/00u1");
    }

    #[test]
    fn the_cursor_comes_from_the_next_link() {
        let next = url::Url::parse("https://o.example/api/v1/users?after=00uXYZ&limit=20").unwrap();
        assert_eq!(after_param(Some(&next)).as_deref(), Some("00uXYZ"));
        assert_eq!(after_param(None), None);
    }
}
