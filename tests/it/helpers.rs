//! Test harness: the real simulator and the real portal on port 0, a cookie-keeping client
//! that does not follow redirects, and sign-in through the real OIDC flow.

use std::net::SocketAddr;
use std::sync::Arc;

use admin_portal::audit::AuditRecord;
use admin_portal::config::Config;
use admin_portal::db::Database;
use admin_portal::{Application, RunningApp};
use okta_sim::{self, RunningSim, SimOptions, SimState};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};

pub const PASSWORD: &str = okta_sim::DEMO_PASSWORD;
pub const AGENT: &str = "agent@example.com";
pub const MANAGER: &str = "manager@example.com";
pub const VIEWER: &str = "viewer@example.com";

/// Set to run the suite against PostgreSQL instead of SQLite.
pub const POSTGRES_ENV: &str = "ADMIN_PORTAL_TEST_POSTGRES_URL";

/// The test Redis (`.ci/run` sets it; the machine's own by default).
pub const REDIS_ENV: &str = "ADMIN_PORTAL_TEST_REDIS_URL";

pub fn redis_url() -> String {
    std::env::var(REDIS_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub sim: RunningSim,
    pub app: RunningApp,
    pub base: String,
}

/// A database URL for one test: a fresh SQLite file, or a fresh PostgreSQL schema.
pub async fn test_database_url() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => {
            let schema = format!("t_{}", &id[..16]);
            let pool = sqlx::PgPool::connect(&url)
                .await
                .expect("connect to test PostgreSQL");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&pool)
                .await
                .expect("create schema");
            pool.close().await;
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => {
            let dir = std::env::temp_dir().join("admin-portal-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}", dir.join(format!("{id}.db")).display())
        }
    }
}

/// ACTIVE seeded end users who are neither demo accounts nor protected, in id order.
pub fn plain_active_users(sim: &SimState) -> Vec<String> {
    let store = sim.store();
    let mut ids: Vec<String> = store
        .users
        .values()
        .filter(|u| {
            u.status == okta_sim::UserStatus::Active
                && ![AGENT, MANAGER, VIEWER].contains(&u.login.as_str())
                && !store
                    .group_names(u)
                    .iter()
                    .any(|g| g == "Executives" || g == "Portal-Admins")
        })
        .map(|u| u.id.clone())
        .collect();
    ids.sort();
    ids
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the simulator and a portal whose configuration `adjust` may change.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        admin_portal::startup::init_tls();
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions {
                end_users: 20,
                ..SimOptions::default()
            },
        )
        .await
        .expect("simulator starts");
        let mut config = admin_portal::demo::config_for_simulator(
            sim.base_url(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            test_database_url().await,
        )
        .expect("config");
        adjust(&mut config);
        let valid = config.validate().expect("valid test config");
        let app = Application::build(valid).await.expect("portal builds");
        sim.state
            .register_client(okta_sim::portal_client(&app.base_url()));
        let app = app.spawn();
        let base = app.base_url.clone();
        TestApp { sim, app, base }
    }

    pub fn sim(&self) -> &SimState {
        &self.sim.state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// A browser signed in as `login` through the real flow.
    pub async fn signed_in(&self, login: &str) -> Browser {
        let browser = self.browser();
        let landed = browser.sign_in(login, PASSWORD, "/").await;
        assert_eq!(
            landed, "/",
            "sign-in as {login} should land on the home page"
        );
        browser
    }

    /// The audit records of `action`, once there are at least `n` of them (work the public
    /// API does after its answer is recorded a moment later); fails after five seconds.
    pub async fn audit_of(&self, action: &str, n: usize) -> Vec<AuditRecord> {
        let mut found = Vec::new();
        for _ in 0..100 {
            found = self.audit().await;
            found.retain(|r| r.action == action);
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} {action} records, found {found:?}");
    }

    /// An ACTIVE seeded end user who is neither a demo account nor protected.
    pub fn plain_active_user(&self) -> String {
        plain_active_users(self.sim())
            .into_iter()
            .next()
            .expect("a plain active user in the seed")
    }

    pub async fn audit(&self) -> Vec<AuditRecord> {
        let mut rows = self.app.state.audit.recent(1000).await.expect("read audit");
        rows.reverse();
        rows
    }

    /// The key of this browser's session row: the SHA-256 of its cookie's value.
    pub fn session_row_key(&self, browser: &Browser) -> String {
        let id: tower_sessions::session::Id = browser
            .session_cookie()
            .expect("a session cookie")
            .parse()
            .expect("a session id");
        admin_portal::session_store::hash_id(&id)
    }

    /// Seconds until this browser's stored session expires.
    pub async fn session_seconds_left(&self, browser: &Browser) -> i64 {
        let key = self.session_row_key(browser);
        let sql = "SELECT expires_at FROM portal_sessions WHERE id_hash = $1";
        let expires_at: i64 = match &self.app.state.db {
            Database::Sqlite(pool) => sqlx::query_scalar(sql).bind(&key).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(sql).bind(&key).fetch_one(pool).await,
        }
        .expect("session row");
        expires_at - time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// Sets how many seconds this browser's stored session has left.
    pub async fn set_session_seconds_left(&self, browser: &Browser, seconds: i64) {
        let at = time::OffsetDateTime::now_utc().unix_timestamp() + seconds;
        let changed = self.set_session_expiry(browser, at).await;
        assert_eq!(changed, 1, "the browser's session is in the store");
    }

    /// Makes this browser's stored session expire now, as if the idle timeout had passed.
    pub async fn expire_session_of(&self, browser: &Browser) {
        let at = time::OffsetDateTime::now_utc().unix_timestamp() - 60;
        let changed = self.set_session_expiry(browser, at).await;
        assert_eq!(changed, 1, "the browser's session is in the store");
    }

    async fn set_session_expiry(&self, browser: &Browser, at: i64) -> u64 {
        let key = self.session_row_key(browser);
        let sql = "UPDATE portal_sessions SET expires_at = $1 WHERE id_hash = $2";
        match &self.app.state.db {
            Database::Sqlite(pool) => sqlx::query(sql)
                .bind(at)
                .bind(&key)
                .execute(pool)
                .await
                .expect("update session")
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(sql)
                .bind(at)
                .bind(&key)
                .execute(pool)
                .await
                .expect("update session")
                .rows_affected(),
        }
    }

    /// Every session row as stored: (id hash, sealed data, expiry in Unix seconds).
    pub async fn session_rows(&self) -> Vec<(String, Vec<u8>, i64)> {
        let sql = "SELECT id_hash, data, expires_at FROM portal_sessions ORDER BY id_hash";
        match &self.app.state.db {
            Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .expect("session rows")
    }
}

/// A cookie-keeping HTTP client that never follows redirects.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(response: Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn location(&self) -> String {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The trimmed text of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> Option<String> {
        let sel = Selector::parse(selector).expect("selector");
        self.html()
            .select(&sel)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_string())
    }

    pub fn count(&self, selector: &str) -> usize {
        let sel = Selector::parse(selector).expect("selector");
        self.html().select(&sel).count()
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser {
            client,
            jar,
            base: base.to_string(),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{}", self.base, url)
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Page::from(
            self.client
                .get(self.absolute(url))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn get_htmx(&self, url: &str) -> Page {
        Page::from(
            self.client
                .get(self.absolute(url))
                .header("HX-Request", "true")
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Page {
        Page::from(
            self.client
                .post(self.absolute(url))
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// The portal's session cookie value, if any.
    pub fn session_cookie(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == "portal_session")
            .map(|(_, v)| v.to_string())
    }

    /// The CSRF token the portal put in the page's `<meta>`.
    pub async fn csrf_token(&self) -> String {
        let page = self.get("/me").await;
        assert_eq!(
            page.status, 200,
            "need a signed-in session for a CSRF token"
        );
        let sel = Selector::parse("meta[name=csrf-token]").expect("selector");
        page.html()
            .select(&sel)
            .next()
            .and_then(|e| e.value().attr("content").map(str::to_string))
            .expect("csrf meta")
    }

    /// Starts a sign-in and returns the provider's authorize URL.
    pub async fn start_sign_in(&self, return_to: &str) -> String {
        let login = self
            .get(&format!("/auth/login?return_to={}", url_encode(return_to)))
            .await;
        assert_eq!(login.status, 303, "login redirects to the provider");
        login.location()
    }

    /// Submits the provider's sign-in form; returns the provider's redirect (to the callback).
    pub async fn provider_sign_in(&self, authorize_url: &str, login: &str, password: &str) -> Page {
        let form_page = self.get(authorize_url).await;
        if form_page.status == 302 {
            // Single sign-on: the provider already knows us.
            return form_page;
        }
        assert_eq!(
            form_page.status, 200,
            "provider shows its sign-in form: {}",
            form_page.body
        );
        let sel = Selector::parse("form#sim-login input[type=hidden]").expect("selector");
        let html = form_page.html();
        let mut fields: Vec<(String, String)> = html
            .select(&sel)
            .filter_map(|e| {
                Some((
                    e.value().attr("name")?.to_string(),
                    e.value().attr("value").unwrap_or_default().to_string(),
                ))
            })
            .collect();
        fields.push(("username".into(), login.into()));
        fields.push(("password".into(), password.into()));
        let action = authorize_url.split('?').next().expect("authorize url");
        Page::from(
            self.client
                .post(action)
                .form(&fields)
                .send()
                .await
                .expect("POST authorize"),
        )
        .await
    }

    /// The whole flow; returns where the portal sent us after the callback.
    pub async fn sign_in(&self, login: &str, password: &str, return_to: &str) -> String {
        let authorize = self.start_sign_in(return_to).await;
        let redirect = self.provider_sign_in(&authorize, login, password).await;
        assert_eq!(
            redirect.status, 302,
            "provider redirects back: {}",
            redirect.body
        );
        let callback = self.get(&redirect.location()).await;
        assert_eq!(
            callback.status, 303,
            "callback completes sign-in: {}",
            callback.body
        );
        callback.location()
    }

    /// Runs the flow up to the callback and returns the callback's response.
    pub async fn sign_in_callback(&self, login: &str) -> Page {
        let authorize = self.start_sign_in("/").await;
        let redirect = self.provider_sign_in(&authorize, login, PASSWORD).await;
        assert_eq!(redirect.status, 302);
        self.get(&redirect.location()).await
    }
}

/// Waits until `done` holds (for what happens after an answer); fails after five seconds.
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within five seconds");
}

pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Query parameter `name` of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
