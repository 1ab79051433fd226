//! Browser tests in a real headless Chromium driven through chromedriver (WebDriver).
//!
//! Outside CI, a machine without `chromium` and `chromium-driver` skips these loudly; in CI
//! (`CI` set) a missing browser is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Driver {
    child: Child,
    pub client: Client,
    _profile: PathBuf,
    /// Where the browser saves downloads.
    pub downloads: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts chromedriver and a headless Chromium session, or returns `None` (skip) when the
/// browser is not installed outside CI.
pub async fn driver() -> Option<Driver> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI must run the browser tests: install the Debian packages chromium and chromium-driver"
            );
        }
        eprintln!(
            "\n*** SKIPPING BROWSER TEST: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver) ***\n"
        );
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = std::env::temp_dir().join(format!(
        "admin-portal-chrome-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let downloads = profile.join("downloads");
    std::fs::create_dir_all(&downloads).expect("download dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = None;
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Driver {
                    child,
                    client,
                    _profile: profile,
                    downloads,
                });
            }
            Err(e) => {
                last_error = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("chromedriver did not start: {last_error:?}");
}

/// Where screenshots are kept (a CI artifact folder).
pub fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir.join(name)
}

pub async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
}

#[tokio::test]
async fn agent_signs_in_through_the_provider_page_sees_their_name_and_signs_out() {
    let Some(driver) = driver().await else { return };
    let t = TestApp::spawn().await;
    let c = &driver.client;
    // Through the provider's sign-in page and back.
    sign_in_in_browser(c, &t, AGENT).await;
    let name = wait_for(c, "#agent-name").await.text().await.unwrap();
    assert_eq!(name, "Alex Agent");
    assert_eq!(c.current_url().await.unwrap().as_str(), t.url("/"));
    std::fs::write(artifact("home-agent.png"), c.screenshot().await.unwrap()).unwrap();
    c.goto(&t.url("/me")).await.unwrap();
    wait_for(c, "#permission-table").await;
    std::fs::write(artifact("me-agent.png"), c.screenshot().await.unwrap()).unwrap();
    // Sign out: a POST form with the CSRF token, then the provider's logout and back.
    c.find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#sign-in-again").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&t.url("/signed-out"))
    );
    std::fs::write(artifact("signed-out.png"), c.screenshot().await.unwrap()).unwrap();
    let audit = t.audit().await;
    let actions: Vec<_> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["auth.sign_in", "auth.sign_out"]);
    driver.client.clone().close().await.unwrap();
}

async fn sign_in_in_browser(c: &Client, t: &TestApp, login: &str) {
    c.goto(&t.url("/")).await.expect("open portal");
    wait_for(c, "#username")
        .await
        .send_keys(login)
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("#sim-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#agent-name").await;
}

/// Waits until the element's text contains `needle`.
async fn wait_for_text(c: &Client, css: &str, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(text) = e.text().await
            && text.contains(needle)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {needle:?} in {css}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn agent_searches_while_typing_creates_a_user_and_deactivates_with_confirmation() {
    let Some(driver) = driver().await else { return };
    let t = TestApp::spawn().await;
    let c = &driver.client;
    sign_in_in_browser(c, &t, AGENT).await;
    let (login, last) = {
        let store = t.sim().store();
        let u = store
            .users
            .values()
            .find(|u| u.status == okta_sim::UserStatus::Active && u.login.contains('.'))
            .unwrap();
        (u.login.clone(), u.last_name.clone())
    };
    // Live search: type a few letters, results arrive without a page load.
    c.goto(&t.url("/users")).await.unwrap();
    let q = wait_for(c, "#q").await;
    let typed = &last[..4.min(last.len())];
    q.send_keys(typed).await.unwrap();
    // htmx pushes the query into the URL when the results arrive (no page load).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let url = c.current_url().await.unwrap();
        if url.query_pairs().any(|(k, v)| k == "q" && v == typed) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the URL never reflected the query: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_text(c, "#user-results", &login).await;
    std::fs::write(artifact("users-search.png"), c.screenshot().await.unwrap()).unwrap();
    // Open the user.
    c.find(Locator::XPath(&format!(
        "//tr[td[contains(., '{login}')]]//a[@class='user-link']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for(c, "#user-status").await;
    std::fs::write(artifact("user-detail.png"), c.screenshot().await.unwrap()).unwrap();

    // Create a user.
    c.goto(&t.url("/users/new")).await.unwrap();
    for (field, value) in [
        ("#first_name", "Grace"),
        ("#last_name", "Hopper"),
        ("#email", "grace.browser@example.com"),
        ("#reason", "New hire created from the browser test"),
        ("#ticket", "HR-7"),
    ] {
        wait_for(c, field).await.send_keys(value).await.unwrap();
    }
    c.find(Locator::Css("input[name=credential][value=password]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("Correct-Horse-7-Battery")
        .await
        .unwrap();
    std::fs::write(artifact("user-create.png"), c.screenshot().await.unwrap()).unwrap();
    c.find(Locator::Css("#create-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#user-name", "Grace Hopper").await;
    let created = t.sim().user("grace.browser@example.com").expect("created");
    assert_eq!(created.status, okta_sim::UserStatus::Active);

    // Deactivate with confirmation.
    c.find(Locator::Css("[data-action=deactivate]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#consequence", "Signs the user out everywhere").await;
    wait_for(c, "#reason")
        .await
        .send_keys("Left the company, ticket confirmed")
        .await
        .unwrap();
    std::fs::write(
        artifact("user-deactivate-confirm.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.find(Locator::Css("#confirm-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#user-status", "Deactivated").await;
    wait_for_text(c, ".flash", "was deactivated").await;
    assert_eq!(
        t.sim().user("grace.browser@example.com").unwrap().status,
        okta_sim::UserStatus::Deprovisioned
    );
    std::fs::write(
        artifact("user-deactivated.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    let actions: Vec<String> = t.audit().await.into_iter().map(|r| r.action).collect();
    assert!(
        actions.ends_with(&["user.create".to_string(), "user.deactivate".to_string()]),
        "{actions:?}"
    );
    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn manager_filters_activity_sees_the_chart_and_downloads_the_csv() {
    let Some(driver) = driver().await else { return };
    let t = TestApp::spawn().await;
    // Some history: the agent signs in and is refused the activity page.
    let agent = t.signed_in(AGENT).await;
    assert_eq!(agent.get("/activity").await.status, 403);
    let c = &driver.client;
    sign_in_in_browser(c, &t, MANAGER).await;
    c.find(Locator::Css("#nav-activity"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#chart-daily").await;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    wait_for(c, "#f-agent")
        .await
        .send_keys(AGENT)
        .await
        .unwrap();
    // Date inputs take the date in the browser's locale order; set the value directly.
    c.execute(
        "document.getElementById('f-from').value = arguments[0]; document.getElementById('f-to').value = arguments[0];",
        vec![serde_json::json!(today)],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#activity-table", "policy.denied").await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains("agent=agent%40example.com")
            && url.as_str().contains(&format!("from={today}")),
        "{url}"
    );
    let table = c
        .find(Locator::Css("#activity-table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !table.contains("Morgan Manager"),
        "only the agent's records: {table}"
    );
    assert!(
        c.find(Locator::Css("#chart-daily rect")).await.is_ok(),
        "the chart is drawn"
    );
    std::fs::write(
        artifact("activity-filtered.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.find(Locator::Css("#export-csv"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let file = driver.downloads.join("activity.csv");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the CSV was not downloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("id,occurred_at"));
    assert!(
        csv.contains("policy.denied") && csv.contains(AGENT),
        "{csv}"
    );
    assert!(
        !csv.contains("manager@example.com,Morgan"),
        "only the filtered records"
    );
    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn agent_enrolls_totp_for_a_user_from_the_qr_page_and_sees_it_active() {
    let Some(driver) = driver().await else { return };
    let t = TestApp::spawn().await;
    let c = &driver.client;
    sign_in_in_browser(c, &t, AGENT).await;
    let user = t.plain_active_user();
    c.goto(&t.url(&format!("/users/{user}"))).await.unwrap();
    wait_for(c, "#enroll-factor").await.click().await.unwrap();
    wait_for(c, "input[name=kind][value=google_authenticator]")
        .await
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#reason"))
        .await
        .unwrap()
        .send_keys("Caller has a new phone")
        .await
        .unwrap();
    c.find(Locator::Css("#enroll-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret: String = wait_for(c, "#totp-secret")
        .await
        .text()
        .await
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        c.find(Locator::Css("#totp-qr")).await.is_ok(),
        "the QR code is on the page"
    );
    std::fs::write(
        artifact("mfa-totp-enroll.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    let code = {
        let secret = totp_rs::Secret::try_from_base32(&secret).unwrap();
        let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        totp.generate(now).to_string()
    };
    c.find(Locator::Css("#passcode"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    c.find(Locator::Css("#activate-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, ".flash", "is now active").await;
    wait_for_text(c, "#factor-table", "ACTIVE").await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains(&secret),
        "the secret is gone once the factor is active"
    );
    std::fs::write(artifact("mfa-active.png"), c.screenshot().await.unwrap()).unwrap();
    let factors = t.sim().factors(&user);
    assert_eq!(factors.len(), 1);
    assert_eq!(format!("{:?}", factors[0].status), "Active");
    driver.client.clone().close().await.unwrap();
}
