//! Reads for the service API: user search, one user, a user's factors, the audit trail.
//! Reads change nothing and are not audited (a refused read is recorded by the front door's
//! permission check); the permission is checked here again so no front end can forget it.

use super::{OpError, Ops, UserRef, guard};
use crate::audit::query::{ActivityFilter, ActivityPage};
use crate::auth::policy::Permission;
use crate::auth::principal::Principal;
use crate::okta::factors::Factor;
use crate::okta::models::{User, UserStatus};
use crate::okta::search::Search;
use crate::okta::users::{UserPage, UserQuery};

/// A user search: text (email, login, name prefix or Okta id), status, group, one page.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    pub q: String,
    pub status: Option<UserStatus>,
    /// An Okta group id: only its members.
    pub group: Option<String>,
    pub limit: u32,
    pub after: Option<String>,
}

fn allowed(principal: &Principal, ops: &Ops, permission: Permission) -> Result<(), OpError> {
    guard::permission(principal, &ops.policy, permission).map_err(|refusal| OpError::Refused {
        refusal,
        user: None,
    })
}

/// Okta's search expression for the text and status (none: everyone).
pub fn expression(q: &str, status: Option<UserStatus>) -> Option<Search> {
    let q = q.trim();
    let text = if q.is_empty() {
        None
    } else if q.len() == 20 && q.starts_with("00u") && q.chars().all(|c| c.is_ascii_alphanumeric())
    {
        Some(Search::eq("id", q))
    } else {
        let attrs = [
            "profile.login",
            "profile.email",
            "profile.firstName",
            "profile.lastName",
        ];
        Search::any(attrs.into_iter().map(|a| Search::sw(a, q)).collect())
    };
    let status = status.map(|s| Search::eq("status", s.as_str()));
    match (text, status) {
        (Some(t), Some(s)) => Some(s.and(t)),
        (t, s) => t.or(s),
    }
}

fn member_matches(user: &User, q: &str, status: Option<UserStatus>) -> bool {
    let q = q.trim().to_lowercase();
    let p = &user.profile;
    let fields = [
        Some(&p.login),
        p.email.as_ref(),
        p.first_name.as_ref(),
        p.last_name.as_ref(),
    ];
    status.is_none_or(|s| s == user.status)
        && (q.is_empty()
            || user.id.to_lowercase() == q
            || fields
                .iter()
                .flatten()
                .any(|v| v.to_lowercase().starts_with(&q)))
}

impl Ops {
    /// One page of users matching the search.
    pub async fn search_users(
        &self,
        principal: &Principal,
        search: &UserSearch,
    ) -> Result<UserPage, OpError> {
        allowed(principal, self, Permission::UsersRead)?;
        let failed = |error| OpError::Okta {
            error: Box::new(error),
            user: None,
        };
        if let Some(group) = &search.group {
            let page = self
                .okta
                .group_members(group, search.limit, search.after.clone())
                .await
                .map_err(failed)?;
            let keep = |u: &User| member_matches(u, &search.q, search.status);
            return Ok(UserPage {
                users: page.users.into_iter().filter(keep).collect(),
                ..page
            });
        }
        let query = UserQuery {
            search: expression(&search.q, search.status),
            limit: Some(search.limit),
            after: search.after.clone(),
            ..UserQuery::default()
        };
        self.okta.list_users(query).await.map_err(failed)
    }

    /// One user by id or login.
    pub async fn get_user(&self, principal: &Principal, user: &UserRef) -> Result<User, OpError> {
        allowed(principal, self, Permission::UsersRead)?;
        let found = self.okta.get_user(user.as_str()).await;
        found.map_err(|error| OpError::Okta {
            error: Box::new(error),
            user: None,
        })
    }

    /// A user's factors.
    pub async fn list_factors(
        &self,
        principal: &Principal,
        user: &UserRef,
    ) -> Result<Vec<Factor>, OpError> {
        allowed(principal, self, Permission::FactorsRead)?;
        let okta_error = |error| OpError::Okta {
            error: Box::new(error),
            user: None,
        };
        let user = self
            .okta
            .get_user(user.as_str())
            .await
            .map_err(okta_error)?;
        self.okta.list_factors(&user.id).await.map_err(okta_error)
    }

    /// A page of the audit trail, newest first.
    pub async fn read_audit(
        &self,
        principal: &Principal,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<ActivityPage, OpError> {
        allowed(principal, self, Permission::AuditRead)?;
        let problems = filter.problems();
        if let Some(first) = problems.first() {
            return Err(OpError::invalid("filter", first.clone()));
        }
        self.audit
            .page(filter, before, limit)
            .await
            .map_err(OpError::Unrecorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_understands_ids_text_and_status() {
        assert_eq!(
            expression("00u1a2b3c4D5e6F7g8h9", None)
                .unwrap()
                .to_string(),
            Search::eq("id", "00u1a2b3c4D5e6F7g8h9").to_string()
        );
        assert!(expression("", None).is_none());
        let both = expression("ada", Some(UserStatus::Active))
            .unwrap()
            .to_string();
        assert!(
            both.contains("status eq \"ACTIVE\"") && both.contains("profile.login sw \"ada\""),
            "{both}"
        );
    }

    #[tokio::test]
    async fn reads_need_their_permission() {
        use crate::auth::principal::fake;
        let ops = super::super::test_ops(Default::default()).await;
        let rogue = fake::service(&ops.policy, "0oaRogue", &["admin.users.read"]);
        let user = UserRef::parse("ada@example.com").unwrap();
        let refused = ops.get_user(&rogue, &user).await.unwrap_err();
        assert!(matches!(
            refused,
            OpError::Refused {
                refusal: super::super::Refusal::Permission(_),
                ..
            }
        ));
    }
}
