//! Crash safety: the portal binary as a child process, killed with SIGKILL twice in the middle
//! of a stream of service-API actions and restarted on the same database (SQLite here, the
//! suite's PostgreSQL schema in the PostgreSQL run). Afterwards `audit verify` passes, every
//! acknowledged action has exactly its one record, no action has two, and every change that
//! reached Okta has a record: its outcome, or `unknown` when the portal died during the call.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use admin_portal::audit::{AuditRecord, AuditStore};
use admin_portal::config::DatabaseConfig;
use admin_portal::db::Database;
use okta_sim::{RunningSim, SimOptions, SimState, UserStatus};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::api::{CUSTOMER, SUPPORT, SUPPORT_SCOPES, token_from};
use crate::helpers::{plain_active_users, test_database_url};

const WORKERS: usize = 4;
const KILLS: usize = 2;
/// Acknowledged actions each portal serves before it is killed.
const PER_RUN: usize = 40;
/// `audit.unfinished_after_seconds` of the child portals.
const UNFINISHED_AFTER: u64 = 2;

/// The portal as a child process; killed when dropped.
struct Portal {
    child: Option<Child>,
    base: String,
}

impl Portal {
    async fn start(config: &Path) -> Portal {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_admin-portal"))
            .args(["serve", "--config"])
            .arg(config)
            .env("ADMIN_PORTAL__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the portal");
        let mut portal = Portal {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
        };
        portal.wait_until_serving().await;
        portal
    }

    async fn wait_until_serving(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = client.get(format!("{}/healthz", self.base)).send().await;
            if up.is_ok_and(|r| r.status() == 200) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "the portal exited at start: {exited:?}");
            assert!(Instant::now() < deadline, "the portal did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is cut off.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config_text(sim: &RunningSim, database_url: &str) -> String {
    let q = |s: &str| json!(s).to_string();
    let mut text = format!(
        "[oidc]\nissuer = {}\nclient_id = {}\nclient_secret = {}\naccess_token_audience = {}\n\
         [okta]\norg_url = {}\napi_token = {}\ntimeout_seconds = 1\n\
         [database]\nurl = {}\n\
         [session]\nencryption_key = {}\n\
         [audit]\nunfinished_after_seconds = {UNFINISHED_AFTER}\n",
        q(sim.issuer()),
        q(okta_sim::PORTAL_CLIENT_ID),
        q(okta_sim::PORTAL_CLIENT_SECRET),
        q(okta_sim::AUDIENCE),
        q(sim.base_url()),
        q(okta_sim::DEMO_API_TOKEN),
        q(database_url),
        q(admin_portal::session_store::SessionKey::generate_base64().expose_secret()),
    );
    for (id, name) in [(SUPPORT, "Support app"), (CUSTOMER, "Customer app")] {
        text.push_str(&format!(
            "[[api.clients]]\nid = {}\nname = {}\nrequests_per_minute = 100000\nburst = 1000\n",
            q(id),
            q(name)
        ));
    }
    for (permission, rule) in admin_portal::api::demo_rules() {
        text.push_str(&format!(
            "[policy.permissions.{}]\nscopes = {}\ngroups = {}\nclients = {}\n",
            q(&permission),
            json!(rule.scopes),
            json!(rule.groups),
            json!(rule.clients)
        ));
    }
    text
}

type Key = (String, &'static str);

/// What the client saw, per (user id, action).
#[derive(Default)]
struct Tally {
    sent: BTreeMap<Key, usize>,
    answered: BTreeMap<Key, usize>,
    /// `auditRecordId` of every acknowledged (200) action.
    acknowledged: Vec<(i64, Key)>,
    /// Answers other than 200 (there should be none).
    unexpected: Vec<String>,
}

struct Stream {
    sim: SimState,
    base: RwLock<String>,
    token: String,
    tally: Mutex<Tally>,
    stop: AtomicBool,
}

impl Stream {
    /// One worker: toggles its own user between ACTIVE and SUSPENDED until told to stop.
    async fn work(self: Arc<Self>, user: String) {
        let client = reqwest::Client::new();
        let why = json!({ "reason": "Crash-safety test of the audit trail" });
        while !self.stop.load(Ordering::Relaxed) {
            let suspended = self.sim.user(&user).map(|u| u.status) == Some(UserStatus::Suspended);
            let action = if suspended { "unsuspend" } else { "suspend" };
            let key: Key = (user.clone(), action);
            *self
                .tally
                .lock()
                .unwrap()
                .sent
                .entry(key.clone())
                .or_default() += 1;
            let base = self.base.read().unwrap().clone();
            let sent = client
                .post(format!("{base}/api/v1/users/{user}/lifecycle/{action}"))
                .bearer_auth(&self.token)
                .json(&why)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let answer = match sent {
                Ok(r) => Some((r.status().as_u16(), r.json::<Value>().await)),
                Err(_) => None,
            };
            self.note(key, answer).await;
        }
    }

    async fn note(&self, key: Key, answer: Option<(u16, reqwest::Result<Value>)>) {
        match answer {
            // Refused or cut off: the portal is down or was killed with this request in flight.
            None | Some((_, Err(_))) => tokio::time::sleep(Duration::from_millis(20)).await,
            Some((status, Ok(body))) => {
                let mut tally = self.tally.lock().unwrap();
                *tally.answered.entry(key.clone()).or_default() += 1;
                match body["auditRecordId"].as_i64() {
                    Some(id) if status == 200 => tally.acknowledged.push((id, key)),
                    _ => tally.unexpected.push(format!("{status} {body}")),
                }
            }
        }
    }

    async fn wait_for_acknowledged(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.tally.lock().unwrap().acknowledged.len() < count {
            assert!(Instant::now() < deadline, "the stream of actions stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn audit_store(database_url: &str) -> AuditStore {
    let db = Database::connect(&DatabaseConfig {
        url: database_url.to_string(),
        max_connections: 2,
    })
    .await
    .expect("connect to the portal's database");
    AuditStore::new(db)
}

/// A simulator, a fresh database and a portal configuration file for both.
async fn setting() -> (RunningSim, String, PathBuf) {
    admin_portal::startup::init_tls();
    let sim = okta_sim::spawn(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        SimOptions {
            end_users: 20,
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator starts");
    sim.state.set_default_rate_limit(1_000_000);
    let database_url = test_database_url().await;
    let dir = std::env::temp_dir().join("admin-portal-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("crash-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&config, config_text(&sim, &database_url)).unwrap();
    (sim, database_url, config)
}

/// Runs the stream through `KILLS` SIGKILLed portals and a last one; returns the stream and
/// the last portal (still running).
async fn run_with_kills(sim: &RunningSim, config: &Path) -> (Arc<Stream>, Portal) {
    let mut portal = Portal::start(config).await;
    let stream = Arc::new(Stream {
        sim: sim.state.clone(),
        base: RwLock::new(portal.base.clone()),
        token: token_from(sim, SUPPORT, SUPPORT_SCOPES).await,
        tally: Mutex::new(Tally::default()),
        stop: AtomicBool::new(false),
    });
    let users = plain_active_users(&sim.state);
    let workers: Vec<_> = users[..WORKERS]
        .iter()
        .map(|u| tokio::spawn(stream.clone().work(u.clone())))
        .collect();
    for run in 1..=KILLS {
        stream.wait_for_acknowledged(run * PER_RUN).await;
        portal.kill();
        // What the killed portal left unfinished is old enough to be recorded at the next start.
        tokio::time::sleep(Duration::from_millis(UNFINISHED_AFTER * 1000 + 500)).await;
        portal = Portal::start(config).await;
        *stream.base.write().unwrap() = portal.base.clone();
    }
    stream.wait_for_acknowledged((KILLS + 1) * PER_RUN).await;
    stream.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    (stream, portal)
}

fn action_of(record: &AuditRecord) -> Option<&'static str> {
    match record.action.as_str() {
        "user.suspend" => Some("suspend"),
        "user.unsuspend" => Some("unsuspend"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_portal_loses_no_acknowledged_action_and_records_each_once() {
    let (sim, database_url, config) = setting().await;
    let (stream, mut last) = run_with_kills(&sim, &config).await;
    let store = audit_store(&database_url).await;
    settle(&store, &config, &mut last).await;
    let records = store.recent(100_000).await.unwrap();
    let tally = stream.tally.lock().unwrap();
    assert!(tally.unexpected.is_empty(), "{:?}", tally.unexpected);
    check_records(&records, &tally, &sim.state);
}

/// Waits until the running portal has recorded what killed ones left unfinished, stops it, and
/// checks the chain with `audit verify`.
async fn settle(store: &AuditStore, config: &Path, last: &mut Portal) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.unfinished_count().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "unfinished changes were never recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.kill();
    let verify = Command::new(env!("CARGO_BIN_EXE_admin-portal"))
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && said.contains("Audit trail intact"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_killed_during_the_okta_call_leaves_an_unknown_record_not_none() {
    let (sim, database_url, config) = setting().await;
    let user = plain_active_users(&sim.state).remove(0);
    let path = format!("/api/v1/users/{user}/lifecycle/suspend");
    sim.state.inject_fault(okta_sim::Fault::new(
        "POST",
        &path,
        okta_sim::FaultKind::Latency(Duration::from_secs(5)),
    ));
    let token = token_from(&sim, SUPPORT, SUPPORT_SCOPES).await;
    let mut portal = Portal::start(&config).await;
    let call = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}{path}", portal.base))
            .bearer_auth(token)
            .json(&json!({ "reason": "Killed while Okta works", "ticket": "SUP-77" }))
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.state.requests("POST", &path).is_empty() {
        assert!(Instant::now() < deadline, "the change never reached Okta");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    portal.kill();
    assert!(call.await.unwrap().is_err(), "the client got no answer");
    let store = audit_store(&database_url).await;
    assert!(
        store
            .recent(10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.action != "user.suspend")
    );
    assert_eq!(store.unfinished_count().await.unwrap(), 1);

    tokio::time::sleep(Duration::from_millis(UNFINISHED_AFTER * 1000 + 500)).await;
    let mut next = Portal::start(&config).await;
    settle(&store, &config, &mut next).await;
    let records = store.recent(10).await.unwrap();
    let r: Vec<_> = records
        .iter()
        .filter(|r| r.action == "user.suspend")
        .collect();
    assert_eq!(r.len(), 1, "exactly one record of the change");
    assert_eq!(r[0].outcome, "unknown");
    assert_eq!(r[0].target_id.as_deref(), Some(user.as_str()));
    assert_eq!(r[0].client_id.as_deref(), Some(SUPPORT));
    assert_eq!(r[0].reason.as_deref(), Some("Killed while Okta works"));
    assert_eq!(r[0].ticket.as_deref(), Some("SUP-77"));
    assert_eq!(r[0].status_before.as_deref(), Some("ACTIVE"));
    assert!(r[0].detail.as_deref().unwrap_or("").contains("unknown"));
}

/// The audit rows against what the client saw and what reached Okta.
fn check_records(records: &[AuditRecord], tally: &Tally, sim: &SimState) {
    let ours: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.client_id.as_deref() == Some(SUPPORT) && action_of(r).is_some())
        .collect();
    let by_id: BTreeMap<i64, &AuditRecord> = ours.iter().map(|r| (r.id, *r)).collect();
    // None lost: every acknowledged action has its record, as the client was told.
    let mut seen = HashSet::new();
    for (id, (user, action)) in &tally.acknowledged {
        assert!(seen.insert(*id), "record {id} acknowledged twice");
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged record {id} is lost"));
        assert_eq!(
            (r.target_id.as_deref(), action_of(r), r.outcome.as_str()),
            (Some(user.as_str()), Some(*action), "success")
        );
    }
    let mut rows: BTreeMap<Key, usize> = BTreeMap::new();
    for r in &ours {
        let key = (
            r.target_id.clone().unwrap_or_default(),
            action_of(r).unwrap(),
        );
        *rows.entry(key).or_default() += 1;
    }
    let unknown = ours.iter().filter(|r| r.outcome == "unknown").count();
    assert!(
        unknown <= KILLS * WORKERS,
        "{unknown} unknown records for {KILLS} kills"
    );
    for (key, sent) in &tally.sent {
        let (user, action) = key;
        let acknowledged = tally.acknowledged.iter().filter(|(_, k)| k == key).count();
        let cut_off = sent - tally.answered.get(key).copied().unwrap_or(0);
        let recorded = rows.get(key).copied().unwrap_or(0);
        let okta = sim
            .requests("POST", &format!("/api/v1/users/{user}/lifecycle/{action}"))
            .len();
        // None duplicated: beyond the acknowledged, at most one record per cut-off request.
        assert!(
            recorded >= acknowledged && recorded - acknowledged <= cut_off,
            "{key:?}: {recorded} records, {acknowledged} acknowledged, {cut_off} cut off"
        );
        // Every change that reached Okta is on record, even when its answer was cut off.
        assert!(
            recorded >= okta,
            "{key:?}: {okta} calls reached Okta, {recorded} records"
        );
    }
    assert!(
        rows.keys().all(|k| tally.sent.contains_key(k)),
        "records of actions never sent"
    );
}
