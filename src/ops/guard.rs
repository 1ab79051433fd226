//! The guards: every rule that can refuse an operation, as plain functions of the principal,
//! the loaded user and the rules. Operations call [`Ops::guard_user`] (or the narrower guards)
//! before any Okta change; front ends never decide these themselves.

use std::collections::BTreeSet;

use super::refusal::Refusal;
use super::{Op, Ops};
use crate::auth::policy::{Permission, Policy};
use crate::auth::principal::Principal;
use crate::okta::models::{Group, User, UserStatus};

/// The policy grants the permission.
pub fn permission(
    principal: &Principal,
    policy: &Policy,
    permission: Permission,
) -> Result<(), Refusal> {
    if principal.can(permission) {
        return Ok(());
    }
    Err(Refusal::Permission(Box::new(
        principal.decide(policy, permission),
    )))
}

/// A person never changes their own account here (that would let an agent lift their own
/// limits); services have no account of their own among users.
pub fn not_self(principal: &Principal, user: &User) -> Result<(), Refusal> {
    if principal.is_self(&user.id, &user.profile.login) {
        return Err(Refusal::OwnAccount);
    }
    Ok(())
}

/// Members of protected groups may be changed only with users.protected.
pub fn not_protected(
    principal: &Principal,
    protected: &BTreeSet<String>,
    groups: &[Group],
) -> Result<(), Refusal> {
    let hits: Vec<String> = groups
        .iter()
        .map(|g| g.profile.name.clone())
        .filter(|name| protected.contains(name))
        .collect();
    if hits.is_empty() || principal.can(Permission::UsersProtected) {
        return Ok(());
    }
    Err(Refusal::Protected(hits))
}

/// Okta offers the operation for the user: its `_links`, delete only when deprovisioned, and
/// profile edits only when not.
pub fn offered(op: Op, user: &User) -> Result<(), Refusal> {
    let deprovisioned = user.status == UserStatus::Deprovisioned;
    match op {
        Op::Delete if !deprovisioned => return Err(Refusal::NotDeprovisioned),
        Op::UpdateProfile if deprovisioned => return Err(Refusal::Deprovisioned),
        _ => {}
    }
    match op.spec().link {
        Some(rel) if !user.has_link(rel) => Err(Refusal::NotOffered {
            label: op.label(),
            status: user.status.label().to_string(),
        }),
        _ => Ok(()),
    }
}

impl Ops {
    /// The guards every operation on an existing user passes: permission, own account,
    /// protected populations.
    pub fn guard_user(
        &self,
        principal: &Principal,
        op: Op,
        user: &User,
        groups: &[Group],
    ) -> Result<(), Refusal> {
        permission(principal, &self.policy, op.permission())?;
        not_self(principal, user)?;
        not_protected(principal, &self.protected_groups(), groups)
    }

    /// Why the principal may not change this user at all (own account, protected), whatever
    /// the operation.
    pub fn target_refusal(
        &self,
        principal: &Principal,
        user: &User,
        groups: &[Group],
    ) -> Option<Refusal> {
        not_self(principal, user)
            .and_then(|()| not_protected(principal, &self.protected_groups(), groups))
            .err()
    }

    /// Why the principal may not run `op` on this user now, for confirmation pages that show
    /// the refusal before anything is typed (nothing is recorded).
    pub fn preview(
        &self,
        principal: &Principal,
        op: Op,
        user: &User,
        groups: &[Group],
    ) -> Option<Refusal> {
        self.guard_user(principal, op, user, groups)
            .and_then(|()| offered(op, user))
            .err()
    }

    /// A group whose membership may be changed: allow-listed, not protected, managed in Okta.
    pub fn guard_group(&self, group: &Group) -> Result<(), Refusal> {
        let name = &group.profile.name;
        let listed = self.users.membership_groups.iter().any(|g| g == name);
        if !listed || self.protected_groups().contains(name) {
            return Err(Refusal::GroupNotAllowed(name.clone()));
        }
        if group.kind.as_deref().is_some_and(|k| k != "OKTA_GROUP") {
            return Err(Refusal::GroupNotManaged(name.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::{ADMINS, AGENTS, MANAGERS};
    use crate::auth::principal::fake;
    use crate::ops::config::UsersConfig;

    const AGENT_SCOPES: &[&str] = &[
        "admin.users.read",
        "admin.users.lifecycle",
        "admin.users.profile",
        "admin.users.groups",
        "admin.users.sessions",
        "admin.factors.manage",
    ];

    async fn ops() -> Ops {
        crate::ops::test_ops(UsersConfig::default()).await
    }

    fn user(id: &str, login: &str, status: &str, links: &[&str]) -> User {
        let links: serde_json::Map<String, serde_json::Value> = links
            .iter()
            .map(|l| (l.to_string(), serde_json::json!({"href": "x"})))
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": id, "status": status, "profile": {"login": login}, "_links": links
        }))
        .unwrap()
    }

    fn group(name: &str, kind: &str) -> Group {
        serde_json::from_value(serde_json::json!({
            "id": format!("00g{name}"), "type": kind, "profile": {"name": name}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn agents_may_act_on_customers_but_not_on_themselves() {
        let ops = ops().await;
        let agent = fake::agent(&ops.policy, &[AGENTS], AGENT_SCOPES);
        let customer = user("00uCustomer", "karen@example.com", "ACTIVE", &["suspend"]);
        assert_eq!(ops.guard_user(&agent, Op::Suspend, &customer, &[]), Ok(()));
        let own = user("00uAgent", "someone@example.com", "ACTIVE", &["suspend"]);
        assert_eq!(
            ops.guard_user(&agent, Op::Suspend, &own, &[]),
            Err(Refusal::OwnAccount)
        );
        let own_by_login = user("00uOther", "AGENT@example.com", "ACTIVE", &[]);
        assert_eq!(
            ops.guard_user(&agent, Op::Suspend, &own_by_login, &[]),
            Err(Refusal::OwnAccount)
        );
    }

    #[tokio::test]
    async fn protected_and_portal_groups_need_users_protected() {
        let ops = ops().await;
        let agent = fake::agent(&ops.policy, &[AGENTS], AGENT_SCOPES);
        let customer = user("00uCustomer", "karen@example.com", "ACTIVE", &[]);
        for name in ["Executives", MANAGERS, AGENTS] {
            let refused =
                ops.guard_user(&agent, Op::Unlock, &customer, &[group(name, "OKTA_GROUP")]);
            assert_eq!(
                refused,
                Err(Refusal::Protected(vec![name.to_string()])),
                "{name}"
            );
        }
        let admin = fake::agent(&ops.policy, &[AGENTS, ADMINS], AGENT_SCOPES);
        assert_eq!(
            ops.guard_user(
                &admin,
                Op::Unlock,
                &customer,
                &[group("Executives", "OKTA_GROUP")]
            ),
            Ok(())
        );
        assert!(
            ops.guard_user(
                &agent,
                Op::Unlock,
                &customer,
                &[group("Sales", "OKTA_GROUP")]
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn permissions_come_from_the_policy_for_people_and_services() {
        let ops = ops().await;
        let customer = user("00uCustomer", "karen@example.com", "DEPROVISIONED", &[]);
        let agent = fake::agent(&ops.policy, &[AGENTS], AGENT_SCOPES);
        match ops.guard_user(&agent, Op::Delete, &customer, &[]) {
            Err(Refusal::Permission(d)) => assert_eq!(d.permission, Permission::UsersDelete),
            other => panic!("{other:?}"),
        }
        let support = fake::service(&ops.policy, "0oaSupport", &["admin.users.lifecycle"]);
        assert_eq!(
            ops.guard_user(&support, Op::Suspend, &customer, &[]),
            Ok(())
        );
        assert!(matches!(
            ops.guard_user(&support, Op::Unlock, &customer, &[]),
            Err(Refusal::Permission(_))
        ));
        let stranger = fake::service(&ops.policy, "0oaStranger", &["admin.users.lifecycle"]);
        assert!(
            ops.guard_user(&stranger, Op::Suspend, &customer, &[])
                .is_err()
        );
        // A service is never "its own account", but protected users stay protected.
        let exec = [group("Executives", "OKTA_GROUP")];
        assert!(matches!(
            ops.guard_user(&support, Op::Suspend, &customer, &exec),
            Err(Refusal::Protected(_))
        ));
    }

    #[test]
    fn status_and_links_decide_what_okta_offers() {
        let locked = user(
            "00u1",
            "a@example.com",
            "LOCKED_OUT",
            &["unlock", "deactivate"],
        );
        assert_eq!(offered(Op::Unlock, &locked), Ok(()));
        assert_eq!(
            offered(Op::Suspend, &locked).unwrap_err().message(),
            "Okta does not offer “Suspend” for a user who is locked out."
        );
        assert_eq!(offered(Op::Delete, &locked), Err(Refusal::NotDeprovisioned));
        let gone = user("00u1", "a@example.com", "DEPROVISIONED", &["activate"]);
        assert_eq!(offered(Op::Delete, &gone), Ok(()));
        assert_eq!(offered(Op::ClearSessions, &locked), Ok(()));
        assert_eq!(offered(Op::UpdateProfile, &locked), Ok(()));
        assert_eq!(
            offered(Op::UpdateProfile, &gone),
            Err(Refusal::Deprovisioned)
        );
    }

    #[tokio::test]
    async fn only_allow_listed_okta_groups_change_membership() {
        let ops = ops().await;
        assert_eq!(ops.guard_group(&group("Sales", "OKTA_GROUP")), Ok(()));
        assert_eq!(
            ops.guard_group(&group("Finance", "OKTA_GROUP")),
            Err(Refusal::GroupNotAllowed("Finance".into()))
        );
        assert_eq!(
            ops.guard_group(&group("Sales", "APP_GROUP")),
            Err(Refusal::GroupNotManaged("Sales".into()))
        );
        let mut listed = UsersConfig::default();
        listed.membership_groups.push(MANAGERS.into());
        let ops = crate::ops::test_ops(listed).await;
        assert_eq!(
            ops.guard_group(&group(MANAGERS, "OKTA_GROUP")),
            Err(Refusal::GroupNotAllowed(MANAGERS.into()))
        );
    }
}
