//! The simulator's in-memory state: users, groups, OAuth clients, grants and sessions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::factors::{PushTransaction, SimFactor};
use super::outbox::OutboxMessage;

/// The password every demo account signs in with.
pub const DEMO_PASSWORD: &str = "Demo-Passw0rd!";

/// Okta user statuses (OKTA-FACTS.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    LockedOut,
    PasswordExpired,
    Suspended,
    Deprovisioned,
}

impl UserStatus {
    pub const ALL: [UserStatus; 8] = [
        UserStatus::Staged,
        UserStatus::Provisioned,
        UserStatus::Active,
        UserStatus::Recovery,
        UserStatus::LockedOut,
        UserStatus::PasswordExpired,
        UserStatus::Suspended,
        UserStatus::Deprovisioned,
    ];

    /// The status as Okta spells it (`LOCKED_OUT`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Staged => "STAGED",
            UserStatus::Provisioned => "PROVISIONED",
            UserStatus::Active => "ACTIVE",
            UserStatus::Recovery => "RECOVERY",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::PasswordExpired => "PASSWORD_EXPIRED",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        UserStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: String,
    pub status: UserStatus,
    pub created: OffsetDateTime,
    pub activated: Option<OffsetDateTime>,
    pub status_changed: Option<OffsetDateTime>,
    pub last_login: Option<OffsetDateTime>,
    pub last_updated: OffsetDateTime,
    pub password_changed: Option<OffsetDateTime>,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile_phone: Option<String>,
    pub department: Option<String>,
    /// The password in clear, when the simulator knows it (sign-in at the authorization
    /// server). A user may have a password the simulator does not know: see
    /// [`SimUser::has_password`].
    pub password: Option<String>,
    pub group_ids: Vec<String>,
    pub second_email: Option<String>,
    /// Other profile attributes of the default schema (`title`, `city`, ...).
    pub profile_extra: BTreeMap<String, Value>,
    pub recovery_question: Option<String>,
    pub recovery_answer: Option<String>,
    /// `credentials.provider.type`: `OKTA`, `FEDERATION`, `SOCIAL`, ...
    pub provider_type: String,
    pub provider_name: String,
}

impl SimUser {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// Whether the user has a password (known to the simulator or not).
    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.password_changed.is_some()
    }

    /// The `profile` object as Okta renders it.
    pub fn profile_json(&self) -> serde_json::Map<String, Value> {
        let mut profile = serde_json::Map::new();
        profile.insert("firstName".into(), Value::from(self.first_name.clone()));
        profile.insert("lastName".into(), Value::from(self.last_name.clone()));
        profile.insert(
            "mobilePhone".into(),
            self.mobile_phone.clone().map_or(Value::Null, Value::from),
        );
        profile.insert(
            "secondEmail".into(),
            self.second_email.clone().map_or(Value::Null, Value::from),
        );
        if let Some(department) = &self.department {
            profile.insert("department".into(), Value::from(department.clone()));
        }
        for (k, v) in &self.profile_extra {
            profile.insert(k.clone(), v.clone());
        }
        profile.insert("login".into(), Value::from(self.login.clone()));
        profile.insert("email".into(), Value::from(self.email.clone()));
        profile
    }
}

/// An API Services app of the org authorization server (OAuth 2.0 for Okta): it
/// authenticates with `private_key_jwt` against `public_jwk` and may be granted the
/// `granted_scopes` (`okta.users.read`, ...). With `dpop_bound_access_tokens` (Okta's default
/// for new API Services apps) its token requests need a DPoP proof and its tokens are
/// DPoP-bound.
#[derive(Debug, Clone)]
pub struct ServiceApp {
    pub client_id: String,
    pub public_jwk: Value,
    pub granted_scopes: Vec<String>,
    pub dpop_bound_access_tokens: bool,
}

/// One System Log event and its place in the log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Persistence order.
    pub seq: u64,
    pub published: OffsetDateTime,
    pub event: Value,
}

#[derive(Debug, Clone)]
pub struct SimGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: &'static str,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
    pub last_membership_updated: OffsetDateTime,
}

/// An OAuth client registered with the authorization server.
#[derive(Debug, Clone)]
pub struct SimClient {
    pub id: String,
    pub secret: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Vec<String>,
    /// Scopes a `client_credentials` client may receive.
    pub service_scopes: Vec<String>,
}

/// One rule of the authorization server's access policy: members of any of `groups`
/// (everyone when empty) may be granted `scopes`.
#[derive(Debug, Clone)]
pub struct AccessRule {
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub issued: Instant,
    pub used: bool,
    /// Refresh tokens issued from this code (revoked if the code is replayed).
    pub refresh_tokens: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub auth_time: i64,
    pub revoked: bool,
}

/// A browser session at the simulated Okta (single sign-on).
#[derive(Debug, Clone)]
pub struct SsoSession {
    pub user_id: String,
    pub auth_time: i64,
}

/// A sign-in form's CSRF token: bound to the browser's `okta_sim_xsrf` cookie, used once.
#[derive(Debug, Clone)]
pub struct XsrfToken {
    pub cookie: String,
    pub issued: Instant,
}

/// A deliberate defect in the next ID token, for the portal's negative tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenTamper {
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 signed with the client secret (an algorithm the provider does not advertise).
    Hs256WithClientSecret,
    /// Signed by a key that is not in the JWKS.
    UnknownKey,
    /// `aud` names another client.
    WrongAudience,
    /// `iss` names another issuer.
    WrongIssuer,
    /// Expired an hour ago.
    Expired,
    /// A nonce other than the one sent to `/authorize`.
    WrongNonce,
}

/// A deliberate defect in the next access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTokenTamper {
    WrongAudience,
    UnknownKey,
}

pub struct Store {
    pub users: BTreeMap<String, SimUser>,
    pub groups: BTreeMap<String, SimGroup>,
    pub clients: HashMap<String, SimClient>,
    /// Public JWKs of custom-server clients that authenticate by `private_key_jwt`.
    pub client_keys: HashMap<String, Value>,
    pub rules: Vec<AccessRule>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub revoked_jti: HashSet<String>,
    pub sso_sessions: HashMap<String, SsoSession>,
    /// CSRF tokens of rendered sign-in forms, by token.
    pub xsrf_tokens: HashMap<String, XsrfToken>,
    pub access_token_ttl: Duration,
    pub id_token_tamper: Option<IdTokenTamper>,
    pub access_token_tamper: Option<AccessTokenTamper>,
    /// Number of successful token endpoint calls per grant type (tests read it).
    pub token_calls: HashMap<String, u32>,
    /// SSWS API tokens accepted by the Management API.
    pub api_tokens: Vec<String>,
    /// Service apps of the org authorization server, by client id.
    pub service_apps: HashMap<String, ServiceApp>,
    /// `client_id` + `jti` of client assertions already used, with their expiry.
    pub used_assertions: HashMap<String, i64>,
    /// DPoP nonces and the proofs already seen.
    pub dpop: crate::dpop::DpopState,
    /// The System Log, in persistence order.
    pub log: Vec<LogEntry>,
    pub log_seq: u64,
    /// Counter for the ids of users created through the API.
    pub created_users: u64,
    /// Enrolled MFA factors of every user, in enrollment order.
    pub factors: Vec<SimFactor>,
    /// Counter for factor ids.
    pub factor_seq: u64,
    /// Push verifications (`POST …/factors/{factorId}/verify` on a push factor).
    pub push_transactions: Vec<PushTransaction>,
    /// Every passcode "sent" by sms, call or email, oldest first.
    pub outbox: Vec<OutboxMessage>,
    /// One-time activation and password-recovery tokens (the links in those emails).
    pub email_tokens: HashMap<String, crate::links::EmailToken>,
}

impl Store {
    pub fn user_by_login(&self, login: &str) -> Option<&SimUser> {
        let login = login.to_lowercase();
        self.users
            .values()
            .find(|u| u.login.to_lowercase() == login)
    }

    /// Finds a user by id, login (case-insensitive) or unambiguous login short name.
    pub fn find_user(&self, id_or_login: &str) -> Option<&SimUser> {
        if let Some(user) = self.users.get(id_or_login) {
            return Some(user);
        }
        if let Some(user) = self.user_by_login(id_or_login) {
            return Some(user);
        }
        if id_or_login.contains('@') {
            return None;
        }
        let short = id_or_login.to_lowercase();
        let mut matches = self.users.values().filter(|u| {
            u.login
                .split('@')
                .next()
                .is_some_and(|local| local.to_lowercase() == short)
        });
        match (matches.next(), matches.next()) {
            (Some(user), None) => Some(user),
            _ => None,
        }
    }

    /// How many factors (pending or active) the user has enrolled.
    pub fn factor_count(&self, user_id: &str) -> usize {
        self.factors.iter().filter(|f| f.user_id == user_id).count()
    }

    /// A fresh id for a user created through the API.
    pub fn new_user_id(&mut self) -> String {
        loop {
            self.created_users += 1;
            let id = okta_id("00u", 1_000_000 + self.created_users);
            if !self.users.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn group_names(&self, user: &SimUser) -> Vec<String> {
        user.group_ids
            .iter()
            .filter_map(|id| self.groups.get(id))
            .map(|g| g.name.clone())
            .collect()
    }

    /// The requested scopes that the access policy grants this user (or client, when
    /// `user` is `None`).
    pub fn granted_scopes(&self, user: &SimUser, requested: &[String]) -> Vec<String> {
        let groups = self.group_names(user);
        requested
            .iter()
            .filter(|scope| {
                self.rules.iter().any(|rule| {
                    rule.scopes.iter().any(|s| s == *scope)
                        && (rule.groups.is_empty()
                            || rule.groups.iter().any(|g| groups.contains(g)))
                })
            })
            .cloned()
            .collect()
    }
}

/// A small deterministic generator so the seeded data is the same on every start.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() as usize) % items.len()]
    }
}

const ID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A 20-character Okta-style id with the given prefix, derived from `n`.
pub fn okta_id(prefix: &str, n: u64) -> String {
    let mut rng = Lcg(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC0FFEE);
    let mut id = prefix.to_string();
    while id.len() < 20 {
        id.push(ID_ALPHABET[(rng.next() as usize) % ID_ALPHABET.len()] as char);
    }
    id
}

pub struct DemoAccount {
    pub login: &'static str,
    pub first: &'static str,
    pub last: &'static str,
    pub groups: &'static [&'static str],
    pub what: &'static str,
}

pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        login: "agent@example.com",
        first: "Alex",
        last: "Agent",
        groups: &["Portal-Agents"],
        what: "support agent: search, create, lifecycle, MFA",
    },
    DemoAccount {
        login: "manager@example.com",
        first: "Morgan",
        last: "Manager",
        groups: &["Portal-Managers", "Portal-Agents"],
        what: "manager: everything an agent can, plus delete and activity",
    },
    DemoAccount {
        login: "viewer@example.com",
        first: "Val",
        last: "Viewer",
        groups: &[],
        what: "no portal group: may sign in, may do nothing",
    },
];

pub const PORTAL_SCOPES_AGENT: &[&str] = &[
    "admin.users.read",
    "admin.users.create",
    "admin.users.lifecycle",
    "admin.users.profile",
    "admin.users.sessions",
    "admin.users.groups",
    "admin.factors.read",
    "admin.factors.manage",
];
pub const PORTAL_SCOPES_MANAGER_EXTRA: &[&str] = &["admin.users.delete", "admin.audit.read"];
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The default access policy of the demo authorization server.
pub fn default_rules() -> Vec<AccessRule> {
    let mut managers = strings(PORTAL_SCOPES_AGENT);
    managers.extend(strings(PORTAL_SCOPES_MANAGER_EXTRA));
    vec![
        AccessRule {
            groups: vec![],
            scopes: strings(OIDC_SCOPES),
        },
        AccessRule {
            groups: strings(&["Portal-Agents"]),
            scopes: strings(PORTAL_SCOPES_AGENT),
        },
        AccessRule {
            groups: strings(&["Portal-Managers"]),
            scopes: managers,
        },
    ]
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Linus",
    "Katherine",
    "Claude",
    "Sophie",
    "Niklaus",
    "Adele",
    "Leslie",
    "Shafi",
    "Whitfield",
    "Martin",
    "Joan",
    "Bjarne",
    "Guido",
    "Karen",
    "Ivan",
    "Lynn",
    "José",
    "Zoë",
    "Chloé",
    "Mary",
    "Yukihiro",
    "Anita",
    "Fernando",
    "Silvia",
    "Omar",
    "Priya",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Ritchie",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Torvalds",
    "Johnson",
    "Shannon",
    "Wilson",
    "Wirth",
    "Goldberg",
    "Lamport",
    "Goldwasser",
    "Diffie",
    "Fowler",
    "Clarke",
    "Stroustrup",
    "van Rossum",
    "Spärck Jones",
    "Sutherland",
    "Conway",
    "Núñez",
    "O'Neil",
    "Matsumoto",
    "Borg",
    "Corbató",
    "Micali",
    "Haddad",
    "Patel",
    "Nguyen",
    "Kowalski",
];
const DEPARTMENTS: &[&str] = &[
    "Support",
    "Engineering",
    "Sales",
    "Finance",
    "Operations",
    "Legal",
];

/// Builds the seeded, deterministic demo organisation.
pub fn seed(now: OffsetDateTime, end_users: usize) -> Store {
    let mut groups = BTreeMap::new();
    let group_specs: &[(&str, &str, &'static str)] = &[
        ("Everyone", "All users in the organization", "BUILT_IN"),
        (
            "Portal-Agents",
            "Support agents of the admin portal",
            "OKTA_GROUP",
        ),
        (
            "Portal-Managers",
            "Managers who review portal activity",
            "OKTA_GROUP",
        ),
        (
            "Portal-Admins",
            "Administrators of the portal itself (protected)",
            "OKTA_GROUP",
        ),
        ("Executives", "Leadership team (protected)", "OKTA_GROUP"),
        ("Support Tier 1", "Front-line support", "OKTA_GROUP"),
        ("Engineering", "Engineering staff", "OKTA_GROUP"),
        ("Sales", "Sales staff", "OKTA_GROUP"),
        ("Contractors", "External contractors", "APP_GROUP"),
        // Where the registration edge puts self-registered members of the public.
        (
            "Customers",
            "Customers who registered themselves",
            "OKTA_GROUP",
        ),
    ];
    let mut group_id_by_name = HashMap::new();
    for (i, (name, description, kind)) in group_specs.iter().enumerate() {
        let id = okta_id("00g", 1000 + i as u64);
        group_id_by_name.insert(*name, id.clone());
        let created = now - time::Duration::days(700 - 10 * i as i64);
        groups.insert(
            id.clone(),
            SimGroup {
                id,
                name: name.to_string(),
                description: description.to_string(),
                kind,
                created,
                last_updated: created,
                last_membership_updated: now - time::Duration::days(3),
            },
        );
    }
    let everyone = group_id_by_name["Everyone"].clone();
    let day = time::Duration::days(1);
    let mut users = BTreeMap::new();

    for (i, account) in DEMO_ACCOUNTS.iter().enumerate() {
        let id = okta_id("00u", i as u64);
        let created = now - day * 400;
        let mut group_ids = vec![everyone.clone()];
        group_ids.extend(account.groups.iter().map(|g| group_id_by_name[g].clone()));
        users.insert(
            id.clone(),
            SimUser {
                id,
                status: UserStatus::Active,
                created,
                activated: Some(created),
                status_changed: Some(created),
                last_login: Some(now - day),
                last_updated: created,
                password_changed: Some(created),
                login: account.login.to_string(),
                email: account.login.to_string(),
                first_name: account.first.to_string(),
                last_name: account.last.to_string(),
                mobile_phone: None,
                department: Some("Support".into()),
                password: Some(DEMO_PASSWORD.to_string()),
                group_ids,
                second_email: None,
                profile_extra: BTreeMap::new(),
                recovery_question: None,
                recovery_answer: None,
                provider_type: "OKTA".into(),
                provider_name: "OKTA".into(),
            },
        );
    }

    let mut rng = Lcg(42);
    let end_user_groups = [
        "Support Tier 1",
        "Engineering",
        "Sales",
        "Contractors",
        "Executives",
    ];
    for n in 0..end_users {
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        let slug = |s: &str| {
            s.to_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        };
        let login = format!("{}.{}{}@example.com", slug(first), slug(last), n + 1);
        // Mostly active users, with every other status represented.
        let status = match rng.next() % 20 {
            0 => UserStatus::Staged,
            1 => UserStatus::Provisioned,
            2 => UserStatus::Recovery,
            3 => UserStatus::LockedOut,
            4 => UserStatus::PasswordExpired,
            5 => UserStatus::Suspended,
            6 => UserStatus::Deprovisioned,
            _ => UserStatus::Active,
        };
        let created = now - time::Duration::days(30 + (rng.next() % 900) as i64);
        let has_password = !matches!(status, UserStatus::Staged | UserStatus::Provisioned);
        let activated = (status != UserStatus::Staged).then_some(created + day);
        let mut group_ids = vec![everyone.clone()];
        let g = rng.pick(&end_user_groups);
        group_ids.push(group_id_by_name[g].clone());
        let id = okta_id("00u", 100 + n as u64);
        users.insert(
            id.clone(),
            SimUser {
                id,
                status,
                created,
                activated,
                status_changed: Some(created + day * 2),
                last_login: has_password
                    .then_some(now - time::Duration::days((rng.next() % 60) as i64)),
                last_updated: created + day * 2,
                password_changed: has_password.then_some(created + day),
                login: login.clone(),
                email: login,
                first_name: first.to_string(),
                last_name: last.to_string(),
                mobile_phone: rng
                    .next()
                    .is_multiple_of(3)
                    .then(|| format!("+1 555 01{:02}", rng.next() % 100)),
                department: Some(rng.pick(DEPARTMENTS).to_string()),
                password: None,
                group_ids,
                second_email: None,
                profile_extra: BTreeMap::new(),
                recovery_question: None,
                recovery_answer: None,
                provider_type: "OKTA".into(),
                provider_name: "OKTA".into(),
            },
        );
    }

    Store {
        users,
        groups,
        clients: HashMap::new(),
        rules: default_rules(),
        codes: HashMap::new(),
        refresh_tokens: HashMap::new(),
        revoked_jti: HashSet::new(),
        sso_sessions: HashMap::new(),
        xsrf_tokens: HashMap::new(),
        access_token_ttl: Duration::from_secs(3600),
        id_token_tamper: None,
        access_token_tamper: None,
        token_calls: HashMap::new(),
        api_tokens: Vec::new(),
        service_apps: HashMap::new(),
        used_assertions: HashMap::new(),
        dpop: Default::default(),
        client_keys: HashMap::new(),
        log: Vec::new(),
        log_seq: 0,
        created_users: 0,
        factors: Vec::new(),
        factor_seq: 0,
        push_transactions: Vec::new(),
        outbox: Vec::new(),
        email_tokens: HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_deterministic_and_covers_every_status() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let a = seed(now, 400);
        let b = seed(now, 400);
        assert_eq!(a.users.len(), 403);
        let logins_a: Vec<_> = a.users.values().map(|u| u.login.clone()).collect();
        let logins_b: Vec<_> = b.users.values().map(|u| u.login.clone()).collect();
        assert_eq!(logins_a, logins_b);
        for status in UserStatus::ALL {
            assert!(
                a.users.values().filter(|u| u.status == status).count() >= 5,
                "{status:?} under-represented"
            );
        }
        assert!(
            a.users
                .values()
                .all(|u| u.id.len() == 20 && u.id.starts_with("00u"))
        );
    }

    #[test]
    fn scopes_follow_group_rules() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let store = seed(now, 0);
        let requested: Vec<String> = strings(&["openid", "admin.users.read", "admin.audit.read"]);
        let agent = store.user_by_login("agent@example.com").unwrap();
        assert_eq!(
            store.granted_scopes(agent, &requested),
            strings(&["openid", "admin.users.read"])
        );
        let manager = store.user_by_login("MANAGER@example.com").unwrap();
        assert_eq!(store.granted_scopes(manager, &requested), requested);
        let viewer = store.user_by_login("viewer@example.com").unwrap();
        assert_eq!(
            store.granted_scopes(viewer, &requested),
            strings(&["openid"])
        );
    }
}
