//! Three instances of the portal on one database and one Redis, behind a round-robin front
//! (a few lines of tokio: each new connection goes to the next instance, and the test's
//! clients open a new connection for every request). Sign in through one instance and work
//! through the others; a search storm across all three still gets no Okta 429; the audit
//! chain stays whole and holds exactly the actions that were acknowledged.
//!
//! On SQLite the three share one database file; CI runs the suite again on PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use admin_portal::config::Config;
use admin_portal::{Application, RunningApp};
use futures_util::StreamExt;
use okta_sim::{RunningSim, SimOptions, UserStatus};
use reqwest::cookie::Jar;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// The simulator's limit on `GET /api/v1/users` in the storm.
const LIMIT: usize = 60;

pub struct Cluster {
    pub sim: RunningSim,
    pub apps: Vec<RunningApp>,
    /// Connections the front handed to each instance.
    pub served: Arc<Vec<AtomicUsize>>,
    pub front: String,
}

/// Accepts connections on `listener` and hands each to the next backend in turn.
async fn round_robin(
    listener: TcpListener,
    backends: Vec<SocketAddr>,
    served: Arc<Vec<AtomicUsize>>,
) {
    let next = AtomicUsize::new(0);
    while let Ok((mut inbound, _)) = listener.accept().await {
        let i = next.fetch_add(1, Ordering::Relaxed) % backends.len();
        served[i].fetch_add(1, Ordering::Relaxed);
        let backend = backends[i];
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

impl Cluster {
    /// `n` portals sharing a database, a Redis prefix of their own and the front's URL.
    pub async fn spawn(n: usize, adjust: impl Fn(&mut Config)) -> Cluster {
        Self::spawn_sized(n, 20, adjust).await
    }

    /// As [`Cluster::spawn`], with `end_users` seeded end users.
    pub async fn spawn_sized(n: usize, end_users: usize, adjust: impl Fn(&mut Config)) -> Cluster {
        admin_portal::startup::init_tls();
        let options = SimOptions {
            end_users,
            ..SimOptions::default()
        };
        let sim = okta_sim::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), options)
            .await
            .expect("simulator starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = format!("http://{}", listener.local_addr().unwrap());
        let database = test_database_url().await;
        let prefix = format!("test:cluster:{}:", uuid::Uuid::new_v4());
        let mut apps = Vec::new();
        let mut key = None;
        for _ in 0..n {
            let mut config = admin_portal::demo::config_for_simulator(
                sim.base_url(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
                database.clone(),
            )
            .expect("config");
            config.server.public_base_url = Some(front.parse().unwrap());
            config.cluster.redis_url = Some(redis_url().into());
            config.cluster.key_prefix = prefix.clone();
            config.cluster.timeout_ms = 2000;
            config.session.agent_requests_per_minute = 0;
            // Instances behind one front share the key their sessions are sealed with.
            let key = key.get_or_insert_with(|| config.session.encryption_key.clone());
            config.session.encryption_key = key.clone();
            adjust(&mut config);
            let valid = config.validate().expect("valid config");
            let app = Application::build(valid).await.expect("portal builds");
            apps.push(app.spawn());
        }
        sim.state.register_client(okta_sim::portal_client(&front));
        let served = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let backends = apps.iter().map(|a| a.addr).collect();
        tokio::spawn(round_robin(listener, backends, served.clone()));
        Cluster {
            sim,
            apps,
            served,
            front,
        }
    }

    /// A browser that opens a new connection for every request, so the front spreads its
    /// requests over every instance.
    pub fn browser(&self) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Browser {
            client,
            jar,
            base: self.front.clone(),
        }
    }

    pub async fn signed_in(&self, login: &str) -> Browser {
        let browser = self.browser();
        assert_eq!(browser.sign_in(login, PASSWORD, "/").await, "/");
        browser
    }

    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }
}

#[tokio::test]
async fn a_session_started_on_one_instance_works_on_the_others_and_ends_on_all() {
    let c = Cluster::spawn(3, |config| config.session.cache_recheck_seconds = 1).await;
    let agent = c.signed_in(AGENT).await;
    let stolen = format!(
        "portal_session={}",
        agent.session_cookie().expect("a session cookie")
    );
    let before = c.served();
    for _ in 0..6 {
        let page = agent.get("/users?q=a").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let after = c.served();
    assert!(
        after.iter().zip(&before).all(|(a, b)| a - b >= 2),
        "every instance served the signed-in agent: {before:?} → {after:?}"
    );
    let copy = c
        .browser()
        .client
        .get(format!("{}/me", c.front))
        .header("cookie", &stolen);
    assert_eq!(
        copy.send().await.unwrap().status(),
        200,
        "the copied cookie works while the session lives"
    );
    // Signing out on one instance ends the session on all of them.
    let csrf = agent.csrf_token().await;
    let out = agent
        .post_form("/auth/logout", &[("_csrf", csrf.as_str())])
        .await;
    assert!(out.status.is_redirection(), "{}", out.body);
    for _ in 0..3 {
        let me = agent.get("/me").await;
        assert!(
            me.status.is_redirection(),
            "signed out everywhere: {}",
            me.status
        );
    }
    // A copy of the old cookie is refused by every instance once their cached copy is due
    // for a recheck (`session.cache_recheck_seconds`, here 1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = c.browser();
    for _ in 0..3 {
        let me = replay
            .client
            .get(format!("{}/me", c.front))
            .header("cookie", &stolen)
            .send()
            .await
            .unwrap();
        let status = me.status();
        assert!(
            status.is_redirection(),
            "the ended session is ended everywhere: {status}"
        );
    }
}

#[tokio::test]
async fn three_instances_share_one_okta_budget_and_one_audit_chain() {
    let c = Cluster::spawn(3, |config| config.okta.budget.read_wait_ms = 200).await;
    c.sim
        .state
        .set_rate_limit("GET /api/v1/users", LIMIT as u32);
    let agents = [c.signed_in(AGENT).await, c.signed_in(MANAGER).await];
    let users = plain_active_users(&c.sim.state);
    let locked = users[0].clone();
    c.sim.state.set_user_status(&locked, UserStatus::LockedOut);
    let csrf = agents[0].csrf_token().await;
    let storm = futures_util::stream::iter(0..3 * LIMIT)
        .map(|i| {
            let agents = &agents;
            async move {
                crate::budget::check_page(&agents[i % 2].get(&format!("/users?q=storm{i}")).await)
            }
        })
        .buffer_unordered(12);
    let unlock = crate::budget::unlock_mid_storm(&agents[0], &csrf, &locked);
    let (results, (unlocked, took)) = tokio::join!(storm.collect::<Vec<bool>>(), unlock);

    assert_eq!(
        c.sim.state.rate_limited_answers(),
        0,
        "Okta never answered 429"
    );
    let served = results.iter().filter(|ok| **ok).count();
    assert!(served >= 1, "some searches were served");
    assert!(
        served <= LIMIT / 2,
        "three instances kept to one half of the bucket between them: {served}"
    );
    assert!(unlocked.status.is_redirection(), "{}", unlocked.body);
    assert!(took < Duration::from_secs(2), "the unlock took {took:?}");
    assert_eq!(
        c.sim.state.user(&locked).unwrap().status,
        UserStatus::Active
    );

    // Writes from both agents through all three instances at once: each one acknowledged
    // is one record, and the chain is whole.
    let manager_csrf = agents[1].csrf_token().await;
    let suspends = futures_util::future::join_all(users[1..7].iter().enumerate().map(|(i, id)| {
        let (agent, csrf) = if i % 2 == 0 {
            (&agents[0], &csrf)
        } else {
            (&agents[1], &manager_csrf)
        };
        async move {
            let form = [
                ("_csrf", csrf.as_str()),
                ("reason", "Fraud review"),
                ("ticket", "SUP-7"),
            ];
            agent
                .post_form(&format!("/users/{id}/suspend"), &form)
                .await
        }
    }))
    .await;
    let acknowledged = suspends
        .iter()
        .filter(|p| p.status.is_redirection())
        .count();
    assert_eq!(
        acknowledged,
        6,
        "{:?}",
        suspends.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    let audit = &c.apps[2].state.audit;
    let records = audit.recent(1000).await.unwrap();
    let count = |action: &str| {
        records
            .iter()
            .filter(|r| r.action == action && r.outcome == "success")
            .count()
    };
    assert_eq!(count("user.suspend"), acknowledged);
    assert_eq!(count("user.unlock"), 1);
    for id in &users[1..7] {
        assert_eq!(c.sim.state.user(id).unwrap().status, UserStatus::Suspended);
    }
    let verification = audit.verify().await.unwrap();
    assert!(verification.intact(), "{verification:?}");
}

#[tokio::test]
async fn a_velocity_cap_holds_across_three_instances() {
    let c = Cluster::spawn(3, |config| config.limits.velocity.deactivate = 2).await;
    let agent = c.signed_in(AGENT).await;
    let csrf = agent.csrf_token().await;
    let users = plain_active_users(&c.sim.state);
    let deactivate = |id: String| {
        let (agent, csrf) = (&agent, &csrf);
        async move {
            let form = [
                ("_csrf", csrf.as_str()),
                ("reason", "Left the company"),
                ("ticket", "SUP-9"),
            ];
            agent
                .post_form(&format!("/users/{id}/deactivate"), &form)
                .await
        }
    };
    // Each request reaches the next instance (a new connection each time).
    let before = c.served();
    let answers = [
        deactivate(users[0].clone()).await,
        deactivate(users[1].clone()).await,
        deactivate(users[2].clone()).await,
    ];
    let after = c.served();
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "{before:?} → {after:?}"
    );
    assert_eq!(answers[0].status, 303, "{}", answers[0].body);
    assert_eq!(answers[1].status, 303, "{}", answers[1].body);
    assert_eq!(
        answers[2].status, 429,
        "the third, on a third instance: {}",
        answers[2].body
    );
    assert!(
        answers[2]
            .text("#refusal")
            .unwrap_or_default()
            .starts_with("You have deactivated 2 users in the last hour, the most allowed."),
        "{}",
        answers[2].body
    );
    assert_eq!(
        c.sim.state.user(&users[2]).unwrap().status,
        UserStatus::Active
    );
    let records = c.apps[0].state.audit.recent(100).await.unwrap();
    let outcomes: Vec<_> = records
        .iter()
        .filter(|r| r.action == "user.deactivate")
        .map(|r| r.outcome.as_str())
        .collect();
    let (successes, denied) = (
        outcomes.iter().filter(|o| **o == "success").count(),
        outcomes.iter().filter(|o| **o == "denied").count(),
    );
    assert_eq!((successes, denied), (2, 1), "{outcomes:?}");
    assert!(c.apps[1].state.audit.verify().await.unwrap().intact());
}

#[tokio::test]
async fn instances_share_search_pages_and_drop_them_when_any_changes_a_user() {
    let c = Cluster::spawn(3, |_| {}).await;
    let agent = c.signed_in(AGENT).await;
    let id = plain_active_users(&c.sim.state)[0].clone();
    let login = c.sim.state.user(&id).unwrap().login;
    let q = login.split('@').next().unwrap().to_string();
    // The session cookie is the host's, whatever the port: the browser may call any instance.
    let on = |i: usize, path: String| {
        let url = format!("{}{path}", c.apps[i].base_url);
        let agent = &agent;
        async move { agent.get(&url).await }
    };
    let searches = || {
        c.sim
            .state
            .requests("GET", "/api/v1/users")
            .iter()
            .filter(|r| r.path == "/api/v1/users")
            .count()
    };
    let before = searches();
    // Okta is slow: the same search on three instances at once is one call.
    c.sim.state.inject_fault(
        okta_sim::Fault::new(
            "GET",
            "/api/v1/users",
            okta_sim::FaultKind::Latency(Duration::from_millis(300)),
        )
        .times(1),
    );
    let path = format!("/users?q={q}");
    let pages = futures_util::future::join_all((0..3).map(|i| on(i, path.clone()))).await;
    for page in &pages {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(&login), "{}", page.body);
    }
    assert_eq!(searches() - before, 1, "one Okta call for three instances");
    assert_eq!(on(2, path.clone()).await.status, 200);
    assert_eq!(searches() - before, 1, "then served from Redis");

    // A change on instance 1 drops the page for all three.
    let csrf = agent.csrf_token().await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("reason", "Fraud review"),
        ("ticket", "SUP-4"),
    ];
    let url = format!("{}/users/{id}/suspend", c.apps[1].base_url);
    let done = agent.post_form(&url, &form).await;
    assert!(done.status.is_redirection(), "{}", done.body);
    let after = on(2, path).await;
    assert_eq!(
        searches() - before,
        2,
        "the page was dropped and asked again"
    );
    assert!(after.body.contains("Suspended"), "{}", after.body);
}
