//! OAuth for Okta with DPoP (issue 15, OKTA-FACTS.md §10.9): the portal against the
//! simulator's DPoP-bound service app, as against a service app Okta creates today.

use base64::Engine;
use okta_sim::{DpopTamper, Fault, FaultKind, SERVICE_APP_CLIENT_ID, UserStatus};
use serde_json::Value;

use crate::helpers::*;

/// The portal on OAuth for Okta with the demo service app (DPoP-bound), `dpop` as given.
async fn spawn(dpop: admin_portal::okta::dpop::DpopMode) -> TestApp {
    TestApp::spawn_with(|c| {
        admin_portal::demo::use_service_app(c);
        if let Some(oauth) = c.okta.oauth.as_mut() {
            oauth.dpop = dpop;
        }
    })
    .await
}

fn segment(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn header_of(r: &okta_sim::RecordedRequest, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The claims of each token request's proof (`None` for a request without one).
fn token_proofs(t: &TestApp) -> Vec<Option<Value>> {
    t.sim()
        .requests("POST", "/oauth2/v1/token")
        .iter()
        .map(|r| header_of(r, "dpop").map(|p| segment(&p, 1)))
        .collect()
}

fn sha256_b64(token: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token))
}

#[tokio::test]
async fn auto_switches_on_at_the_first_challenge_and_every_feature_goes_through_dpop() {
    let t = spawn(Default::default()).await;
    let b = t.signed_in(AGENT).await;
    let search = b.get("/users?q=a").await;
    assert_eq!(search.status, 200, "{}", search.body);

    // Bearer first (auto), refused for want of a proof; then a proof without a nonce, refused
    // with use_dpop_nonce; then a proof with Okta's nonce.
    let proofs = token_proofs(&t);
    assert_eq!(proofs.len(), 3, "{proofs:?}");
    assert!(proofs[0].is_none());
    let (second, third) = (proofs[1].clone().unwrap(), proofs[2].clone().unwrap());
    assert!(second.get("nonce").is_none());
    assert_eq!(third["nonce"], t.sim().dpop_nonce());
    assert_eq!(third["htm"], "POST");
    assert_eq!(
        third["htu"],
        format!("{}/oauth2/v1/token", t.sim.base_url())
    );
    assert_ne!(second["jti"], third["jti"]);
    assert_eq!(t.sim().token_calls("org:client_credentials"), 1);

    // The search went out as DPoP with a proof for exactly that call.
    let call = t.sim().requests("GET", "/api/v1/users").pop().unwrap();
    let authorization = header_of(&call, "authorization").unwrap();
    let token = authorization.strip_prefix("DPoP ").expect("DPoP scheme");
    let proof = header_of(&call, "dpop").unwrap();
    let header = segment(&proof, 0);
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["jwk"]["kty"], "EC");
    let claims = segment(&proof, 1);
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], format!("{}/api/v1/users", t.sim.base_url()));
    assert_eq!(claims["ath"], sha256_b64(token));
    assert_eq!(
        segment(token, 1)["cnf"]["jkt"],
        t.app.state.okta.dpop().unwrap().key().thumbprint(),
        "the token is bound to the portal's DPoP key"
    );

    // A lifecycle action changes the user at Okta.
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let done = b
        .post_form(
            &format!("/users/{user}/suspend"),
            &[
                ("_csrf", &token),
                ("reason", "Caller asked for a suspension"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(t.sim().user(&user).unwrap().status, UserStatus::Suspended);
    let post = t.sim().requests("POST", "/api/v1/users/").pop().unwrap();
    assert!(
        header_of(&post, "authorization")
            .unwrap()
            .starts_with("DPoP ")
    );
    assert_eq!(
        segment(&header_of(&post, "dpop").unwrap(), 1)["htm"],
        "POST"
    );

    // A factor enrolment and reset, for another user.
    let user = plain_active_users(t.sim())[1].clone();
    let page = b
        .post_form(
            &format!("/users/{user}/factors"),
            &[
                ("_csrf", &token),
                ("reason", "Caller has a new phone"),
                ("ticket", "SUP-9"),
                ("kind", "google_authenticator"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let factors = t.sim().factors(&user);
    assert_eq!(factors.len(), 1);
    let reset = b
        .post_form(
            &format!("/users/{user}/factors/{}/reset", factors[0].id),
            &[("_csrf", &token), ("reason", "Lost the phone yesterday")],
        )
        .await;
    assert_eq!(reset.status, 303, "{}", reset.body);
    assert!(t.sim().factors(&user).is_empty());
    assert_eq!(
        t.sim().token_calls("org:client_credentials"),
        1,
        "one DPoP-bound token served it all"
    );
}

#[tokio::test]
async fn the_nonce_is_kept_renewed_when_stale_and_api_nonce_challenges_are_answered_once() {
    let t = spawn(admin_portal::okta::dpop::DpopMode::On).await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/users?q=a").await.status, 200);
    // `true`: a proof from the first request on, so only the nonce round.
    assert_eq!(token_proofs(&t).len(), 2);
    assert!(token_proofs(&t).iter().all(Option::is_some));

    // A new token with the kept nonce: one request.
    t.sim()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(401)));
    assert_eq!(b.get("/users?q=b").await.status, 200);
    assert_eq!(token_proofs(&t).len(), 3, "the kept nonce was accepted");
    assert_eq!(
        token_proofs(&t)[2].clone().unwrap()["nonce"],
        t.sim().dpop_nonce()
    );

    // A stale nonce: refused once, then the renewed nonce.
    t.sim().rotate_dpop_nonce();
    t.sim().rotate_dpop_nonce();
    t.sim()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(401)));
    assert_eq!(b.get("/users?q=c").await.status, 200);
    let proofs = token_proofs(&t);
    assert_eq!(proofs.len(), 5);
    assert_eq!(proofs[4].clone().unwrap()["nonce"], t.sim().dpop_nonce());

    // The Management API asks for a nonce: the first call meets the challenge and is sent
    // once more with the nonce.
    t.sim().require_api_dpop_nonce(true);
    let before = t.sim().request_count("GET", "/api/v1/users");
    assert_eq!(b.get("/users?q=d").await.status, 200);
    assert_eq!(t.sim().request_count("GET", "/api/v1/users") - before, 2);
    let answered = t.sim().requests("GET", "/api/v1/users").pop().unwrap();
    assert_eq!(
        segment(&header_of(&answered, "dpop").unwrap(), 1)["nonce"],
        t.sim().dpop_nonce()
    );

    // A write that meets a stale nonce (renewed while it was on its way) is sent once more
    // with the new one, which is safe: Okta did not execute it. It is done, and audited, once.
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let before = t.sim().request_count("POST", "/api/v1/users/");
    t.sim().inject_fault(Fault::new(
        "POST",
        "/api/v1/users/",
        FaultKind::Latency(std::time::Duration::from_millis(500)),
    ));
    let path = format!("/users/{user}/suspend");
    let form = [
        ("_csrf", token.as_str()),
        ("reason", "Caller asked for a suspension"),
    ];
    let suspend = b.post_form(&path, &form);
    let renew = async {
        // The POST is recorded on arrival, before the injected latency.
        while t.sim().request_count("POST", "/api/v1/users/") == before {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        t.sim().rotate_dpop_nonce();
        t.sim().rotate_dpop_nonce();
    };
    let (done, ()) = tokio::join!(suspend, renew);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(t.sim().user(&user).unwrap().status, UserStatus::Suspended);
    let posts = t.sim().requests("POST", "/api/v1/users/");
    assert_eq!(
        posts.len() - before,
        2,
        "refused for the nonce, then sent with it"
    );
    let retried = segment(&header_of(posts.last().unwrap(), "dpop").unwrap(), 1);
    assert_eq!(retried["nonce"], t.sim().dpop_nonce());
    let rows: Vec<_> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "user.suspend")
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "success");
}

/// The search page after a refused call: 502, the plain message, Okta's request id.
async fn assert_refused_plainly(t: &TestApp, b: &Browser, query: &str) {
    let page = b.get(&format!("/users?q={query}")).await;
    assert_eq!(page.status, 502, "{}", page.body);
    let message = page.text("#search-error").unwrap();
    assert!(
        message.contains("The portal's access to Okta was refused."),
        "{message}"
    );
    let refused = t.sim().requests("GET", "/api/v1/users").pop().unwrap();
    assert_eq!(
        page.text("#okta-request-id").as_deref(),
        Some(refused.request_id.as_str()),
        "the request id of the refused call"
    );
    assert!(!page.body.contains("dpop+jwt") && !page.body.contains("eyJ"));
}

#[tokio::test]
async fn replayed_missing_and_foreign_proofs_are_refused_and_shown_plainly() {
    let t = spawn(Default::default()).await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/users?q=a").await.status, 200);
    for (tamper, query) in [
        (DpopTamper::Replay, "b"),
        (DpopTamper::Drop, "c"),
        (DpopTamper::ForeignKey, "d"),
    ] {
        let before = t.sim().request_count("GET", "/api/v1/users");
        t.sim()
            .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Dpop(tamper)));
        assert_refused_plainly(&t, &b, query).await;
        assert_eq!(
            t.sim().request_count("GET", "/api/v1/users") - before,
            1,
            "{tamper:?}: a refused proof is not sent again"
        );
    }
    assert_eq!(
        b.get("/users?q=e").await.status,
        200,
        "untampered calls work"
    );
}

#[tokio::test]
async fn a_wrong_htu_is_refused_at_the_token_endpoint_and_shown_plainly() {
    // The org URL names the simulator by another host name: the proof's htu is not the URL
    // Okta knows itself by.
    let t = TestApp::spawn_with(|c| {
        admin_portal::demo::use_service_app(c);
        let port = c.okta.org_url.port().unwrap();
        c.okta.org_url = url::Url::parse(&format!("http://localhost:{port}")).unwrap();
    })
    .await;
    let b = t.signed_in(AGENT).await;
    let page = b.get("/users?q=a").await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.text("#search-error")
            .unwrap()
            .contains("The portal's access to Okta was refused.")
    );
    // The page's calls (users and groups) each asked for a token; each proof was refused.
    let requests = t.sim().requests("POST", "/oauth2/v1/token");
    let with_proof: Vec<_> = requests
        .iter()
        .filter(|r| header_of(r, "dpop").is_some())
        .collect();
    assert!(!with_proof.is_empty());
    for r in &with_proof {
        let claims = segment(&header_of(r, "dpop").unwrap(), 1);
        let expected = format!("http://localhost:{}/oauth2/v1/token", t.sim.addr.port());
        assert_eq!(claims["htu"], expected);
    }
    let shown = page.text("#okta-request-id").unwrap();
    assert!(
        with_proof.iter().any(|r| r.request_id == shown),
        "the id of a refused token request: {shown}"
    );
    assert_eq!(t.sim().token_calls("org:client_credentials"), 0);
}

#[tokio::test]
async fn auto_switches_when_an_app_starts_requiring_dpop_and_false_never_does() {
    let t = spawn(Default::default()).await;
    t.sim().set_service_app_dpop(SERVICE_APP_CLIENT_ID, false);
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/users?q=a").await.status, 200);
    let first = t.sim().requests("GET", "/api/v1/users").pop().unwrap();
    assert!(
        header_of(&first, "authorization")
            .unwrap()
            .starts_with("Bearer ")
    );
    assert!(header_of(&first, "dpop").is_none());

    // The app now requires DPoP: the bearer token is refused, the portal switches and the
    // same search goes through with a DPoP-bound token.
    t.sim().set_service_app_dpop(SERVICE_APP_CLIENT_ID, true);
    let page = b.get("/users?q=b").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let last = t.sim().requests("GET", "/api/v1/users").pop().unwrap();
    assert!(
        header_of(&last, "authorization")
            .unwrap()
            .starts_with("DPoP ")
    );
    assert!(t.app.state.okta.dpop().unwrap().enabled());

    // With dpop = false the portal never sends a proof and says plainly it was refused.
    let off = spawn(admin_portal::okta::dpop::DpopMode::Off).await;
    let b = off.signed_in(AGENT).await;
    let page = b.get("/users?q=a").await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(token_proofs(&off).iter().all(Option::is_none));
    assert!(!off.app.state.okta.dpop().unwrap().enabled(), "no switch");
    assert!(page.text("#okta-request-id").is_some());
}
