//! Simulator Factors API conformance (OKTA-FACTS.md §7, §2, §3, §6): enrollment and
//! activation of every supported factor type, the outbox, verification, limits, unenroll,
//! reset, and the System Log events they write.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use okta_sim::{
    self, Channel, DEMO_API_TOKEN, FactorStatus, FactorType, RunningSim, SimOptions, SimState,
    UserStatus,
};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

struct Sim {
    sim: RunningSim,
    http: reqwest::Client,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn request_id(&self) -> String {
        self.headers["x-okta-request-id"]
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Asserts an Okta error and returns its body.
    #[track_caller]
    fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["errorCode"], code, "{}", self.text);
        assert_eq!(body["errorLink"], code);
        assert!(body["errorId"].as_str().is_some_and(|id| !id.is_empty()));
        body
    }

    #[track_caller]
    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json()
    }
}

fn causes(body: &Value) -> Vec<String> {
    body["errorCauses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["errorSummary"].as_str().unwrap().to_string())
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret at a time.
fn totp_code(secret_base32: &str, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(at).to_string()
}

impl Sim {
    async fn new() -> Sim {
        crate::harness::init_tls();
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions {
                end_users: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Sim { sim, http }
    }

    fn state(&self) -> &SimState {
        &self.sim.state
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// The id of a seeded user by login.
    fn id(&self, login: &str) -> String {
        self.state().user(login).unwrap().id
    }

    async fn send_as(
        &self,
        auth: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .header("accept", "application/json");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request = match body {
            Some(body) => request.json(&body),
            None if method == Method::POST || method == Method::PUT => {
                request.header("content-length", "0")
            }
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("SSWS {DEMO_API_TOKEN}");
        self.send_as(Some(&auth), method, path, body).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::POST, path, body).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    async fn enroll(&self, user_id: &str, query: &str, body: Value) -> Resp {
        self.post(
            &format!("/api/v1/users/{user_id}/factors{query}"),
            Some(body),
        )
        .await
    }

    async fn activate(&self, user_id: &str, factor_id: &str, code: &str) -> Resp {
        self.post(
            &format!("/api/v1/users/{user_id}/factors/{factor_id}/lifecycle/activate"),
            Some(json!({ "passCode": code })),
        )
        .await
    }

    async fn verify(&self, user_id: &str, factor_id: &str, body: Option<Value>) -> Resp {
        self.post(
            &format!("/api/v1/users/{user_id}/factors/{factor_id}/verify"),
            body,
        )
        .await
    }

    /// The events of a type, oldest first.
    fn events(&self, event_type: &str) -> Vec<Value> {
        self.state()
            .log_events()
            .into_iter()
            .filter(|e| e["eventType"] == event_type)
            .collect()
    }

    /// Asserts that the last event of a type was written by the request, about the user
    /// and the factor.
    #[track_caller]
    fn assert_event(&self, event_type: &str, request_id: &str, user_id: &str, factor_id: &str) {
        let events = self.events(event_type);
        let e = events
            .iter()
            .rev()
            .find(|e| {
                e["debugContext"]["debugData"]["requestId"] == request_id
                    && e["target"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t["id"] == factor_id))
            })
            .unwrap_or_else(|| {
                panic!("no {event_type} event for request {request_id} and factor {factor_id}")
            });
        assert_eq!(e["actor"]["id"], okta_sim::API_ADMIN_ID);
        assert_eq!(e["outcome"]["result"], "SUCCESS");
        assert_eq!(e["transaction"]["id"], request_id);
        let targets = e["target"].as_array().unwrap();
        assert!(
            targets
                .iter()
                .any(|t| t["id"] == user_id && t["type"] == "User")
        );
        assert!(targets.iter().any(|t| t["id"] == factor_id));
    }
}

fn link_names(factor: &Value) -> Vec<String> {
    let mut names: Vec<String> = factor["_links"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn catalog_lists_the_enabled_factors() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let catalog = s
        .get(&format!("/api/v1/users/{id}/factors/catalog"))
        .await
        .ok();
    let entries: Vec<(String, String, String)> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["enrollment"], "OPTIONAL");
            assert_eq!(
                e["_links"]["enroll"]["href"],
                s.url(&format!("/api/v1/users/{id}/factors"))
            );
            assert_eq!(e["_links"]["enroll"]["hints"]["allow"], json!(["POST"]));
            (
                e["factorType"].as_str().unwrap().to_string(),
                e["provider"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("token:software:totp", "OKTA"),
        ("token:software:totp", "GOOGLE"),
        ("push", "OKTA"),
        ("sms", "OKTA"),
        ("call", "OKTA"),
        ("email", "OKTA"),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), p.to_string(), "NOT_SETUP".to_string()))
    .collect();
    assert_eq!(entries, expected);

    let sms = s
        .enroll(
            &id,
            "",
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550100"}}),
        )
        .await
        .ok();
    let catalog = s
        .get(&format!("/api/v1/users/{id}/factors/catalog"))
        .await
        .ok();
    let entry = catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["factorType"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "PENDING_ACTIVATION");
    assert!(entry["_links"].get("enroll").is_none());
    assert_eq!(entry["_embedded"]["phones"][0]["id"], sms["id"]);
    assert_eq!(
        entry["_embedded"]["phones"][0]["profile"]["phoneNumber"],
        "+14155550100"
    );
    let questions = s
        .get(&format!("/api/v1/users/{id}/factors/questions"))
        .await
        .ok();
    assert!(
        questions
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["question"] == "disliked_food")
    );
}

#[tokio::test]
async fn totp_enrollment_and_activation_for_both_providers() {
    let s = Sim::new().await;
    let user = s.state().user("agent@example.com").unwrap();
    let id = user.id.clone();
    assert!(s.get(&format!("/api/v1/users/{id}/factors")).await.ok() == json!([]));
    for provider in ["OKTA", "GOOGLE"] {
        let r = s
            .enroll(
                &id,
                "",
                json!({"factorType": "token:software:totp", "provider": provider}),
            )
            .await;
        let f = r.ok();
        let fid = f["id"].as_str().unwrap().to_string();
        assert!(fid.starts_with("ostf") && fid.len() == 20, "{fid}");
        assert_eq!(f["factorType"], "token:software:totp");
        assert_eq!(f["provider"], provider);
        assert_eq!(f["vendorName"], provider);
        assert_eq!(f["status"], "PENDING_ACTIVATION");
        assert_eq!(f["profile"]["credentialId"], user.login);
        assert!(f["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(link_names(&f), ["activate", "self", "user"]);
        let me = s.url(&format!("/api/v1/users/{id}/factors/{fid}"));
        assert_eq!(
            f["_links"]["activate"]["href"],
            format!("{me}/lifecycle/activate")
        );
        assert_eq!(f["_links"]["activate"]["hints"]["allow"], json!(["POST"]));
        assert_eq!(f["_links"]["self"]["href"], me);
        assert_eq!(
            f["_links"]["user"]["href"],
            s.url(&format!("/api/v1/users/{id}"))
        );
        let activation = &f["_embedded"]["activation"];
        assert_eq!(activation["timeStep"], 30);
        assert_eq!(activation["encoding"], "base32");
        assert_eq!(activation["keyLength"], 6);
        let secret = activation["sharedSecret"].as_str().unwrap().to_string();
        assert_eq!(Some(secret.clone()), s.state().totp_secret(&fid));
        assert_eq!(
            totp_rs::Secret::try_from_base32(&secret)
                .unwrap()
                .as_bytes()
                .len(),
            20
        );
        s.assert_event("user.mfa.factor.update", &r.request_id(), &id, &fid);

        // The QR code is served (authenticated, like every /api/v1 call).
        let qr = activation["_links"]["qrcode"]["href"].as_str().unwrap();
        assert!(qr.starts_with(&format!("{me}/qr/")), "{qr}");
        let path = qr.trim_start_matches(s.sim.base_url());
        let image = s.get(path).await;
        assert_eq!(image.status, 200);
        assert_eq!(image.headers["content-type"], "image/svg+xml");
        assert!(image.text.contains("<svg"));
        assert_eq!(
            s.send_as(None, Method::GET, path, None)
                .await
                .error(403, "E0000005")["errorSummary"],
            "Invalid session"
        );

        // Listed and readable while pending, with the activation embedded.
        let got = s
            .get(&format!("/api/v1/users/{id}/factors/{fid}"))
            .await
            .ok();
        assert_eq!(got["_embedded"]["activation"]["sharedSecret"], secret);

        let code = totp_code(&secret, now_secs());
        let r = s.activate(&id, &fid, &code).await;
        let active = r.ok();
        assert_eq!(active["status"], "ACTIVE");
        assert_eq!(link_names(&active), ["self", "user", "verify"]);
        assert_eq!(active["_links"]["verify"]["href"], format!("{me}/verify"));
        assert_eq!(
            active["_links"]["self"]["hints"]["allow"],
            json!(["GET", "DELETE"])
        );
        assert!(active.get("_embedded").is_none());
        s.assert_event("user.mfa.factor.activate", &r.request_id(), &id, &fid);
        // The QR code is gone once active.
        s.get(path).await.error(404, "E0000007");
        let got = s
            .get(&format!("/api/v1/users/{id}/factors/{fid}"))
            .await
            .ok();
        assert_eq!(got["status"], "ACTIVE");
    }
    let list = s.get(&format!("/api/v1/users/{id}/factors")).await.ok();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let hook = s.state().factors(&id);
    assert_eq!(hook.len(), 2);
    assert!(
        hook.iter()
            .all(|f| f.factor_type == FactorType::Totp && f.status == FactorStatus::Active)
    );
}

#[tokio::test]
async fn totp_wrong_code_replay_late_code_and_verify() {
    let s = Sim::new().await;
    let id = s.id("manager@example.com");
    let f = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap();
    let secret = s.state().totp_secret(fid).unwrap();
    let now = now_secs();
    let good = totp_code(&secret, now);
    let wrong = if good == "000000" { "111111" } else { "000000" };

    let body = s.activate(&id, fid, wrong).await.error(403, "E0000068");
    assert_eq!(body["errorSummary"], "Invalid Passcode/Answer");
    assert_eq!(
        causes(&body),
        ["Your passcode doesn't match our records. Please try again."]
    );
    // Verifying a factor that is not active yet is refused.
    s.verify(&id, fid, Some(json!({"passCode": good})))
        .await
        .error(400, "E0000001");
    s.activate(&id, fid, &good).await.ok();
    // Activating twice is refused.
    s.activate(&id, fid, &good).await.error(400, "E0000001");

    // Verify: the code just used is replayed, the next one works once.
    s.verify(&id, fid, Some(json!({"passCode": good})))
        .await
        .error(403, "E0000082");
    let next = totp_code(&secret, now + 30);
    let r = s.verify(&id, fid, Some(json!({"passCode": next}))).await;
    assert_eq!(r.ok(), json!({"factorResult": "SUCCESS"}));
    s.assert_event(
        "user.authentication.auth_via_mfa",
        &r.request_id(),
        &id,
        fid,
    );
    s.verify(&id, fid, Some(json!({"passCode": next})))
        .await
        .error(403, "E0000082");
    // A code from three minutes ago is valid but outside the window.
    let old = totp_code(&secret, now - 180);
    if old != good && old != next {
        s.verify(&id, fid, Some(json!({"passCode": old})))
            .await
            .error(403, "E0000083");
    }
    s.verify(&id, fid, Some(json!({"passCode": wrong})))
        .await
        .error(403, "E0000068");
    // No passCode for a TOTP factor.
    s.verify(&id, fid, None).await.error(400, "E0000001");
}

#[tokio::test]
async fn sms_enrollment_sends_a_code_to_the_outbox() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let r = s
        .enroll(
            &id,
            "",
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+1-555-415-1337"}}),
        )
        .await;
    let f = r.ok();
    let fid = f["id"].as_str().unwrap().to_string();
    assert!(fid.starts_with("sms") && fid.len() == 20, "{fid}");
    assert_eq!(f["status"], "PENDING_ACTIVATION");
    assert_eq!(f["vendorName"], "OKTA");
    assert_eq!(f["profile"]["phoneNumber"], "+1-555-415-1337");
    assert_eq!(link_names(&f), ["activate", "resend", "self", "user"]);
    let me = s.url(&format!("/api/v1/users/{id}/factors/{fid}"));
    assert_eq!(f["_links"]["resend"][0]["name"], "sms");
    assert_eq!(f["_links"]["resend"][0]["href"], format!("{me}/resend"));
    assert!(f.get("_embedded").is_none());
    s.assert_event("user.mfa.factor.update", &r.request_id(), &id, &fid);

    let outbox = s.state().outbox();
    assert_eq!(outbox.len(), 1);
    let message = &outbox[0];
    assert_eq!(message.channel, Channel::Sms);
    assert_eq!(message.user_id, id);
    assert_eq!(message.factor_id, fid);
    assert_eq!(message.destination, "+1-555-415-1337");
    assert_eq!(message.code.len(), 6);
    assert!(message.code.chars().all(|c| c.is_ascii_digit()));
    assert!(message.text.contains(&message.code));
    assert_eq!((message.expires_at - message.sent_at).whole_seconds(), 300);
    let code = s.state().last_passcode(&fid).unwrap();
    assert_eq!(code, message.code);

    let r = s.activate(&id, &fid, &code).await;
    let active = r.ok();
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(link_names(&active), ["self", "user", "verify"]);
    s.assert_event("user.mfa.factor.activate", &r.request_id(), &id, &fid);
    // The code is spent.
    s.verify(&id, &fid, Some(json!({"passCode": code})))
        .await
        .error(403, "E0000082");
}

#[tokio::test]
async fn call_enrollment_is_activated_with_the_code_from_the_outbox_page() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let f = s
        .enroll(
            &id,
            "",
            json!({"factorType": "call", "provider": "OKTA",
                   "profile": {"phoneNumber": "+14155550111", "phoneExtension": "1234"}}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap().to_string();
    assert!(fid.starts_with("clf") && fid.len() == 20, "{fid}");
    assert_eq!(f["profile"]["phoneNumber"], "+14155550111");
    assert_eq!(f["profile"]["phoneExtension"], "1234");
    assert_eq!(f["_links"]["resend"][0]["name"], "call");

    // The developer outbox needs no authentication.
    let page = s.send_as(None, Method::GET, "/dev/outbox.json", None).await;
    assert_eq!(page.status, 200);
    let messages = page.json();
    let message = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["factorId"] == fid.as_str())
        .unwrap()
        .clone();
    assert_eq!(message["channel"], "call");
    assert_eq!(message["destination"], "+14155550111");
    assert_eq!(message["userId"], id);
    let code = message["code"].as_str().unwrap();
    let html = s.send_as(None, Method::GET, "/dev/outbox", None).await;
    assert_eq!(html.status, 200);
    assert!(
        html.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.text.contains(code));
    assert!(html.text.contains("agent@example.com"));

    assert_eq!(s.activate(&id, &fid, code).await.ok()["status"], "ACTIVE");
}

#[tokio::test]
async fn email_enrollment_with_token_lifetime_and_expiry() {
    let s = Sim::new().await;
    let user = s.state().user("viewer@example.com").unwrap();
    let id = user.id.clone();
    // Only the user's own (primary or secondary) email can be enrolled.
    let body = s
        .enroll(
            &id,
            "",
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": "someone@else.com"}}),
        )
        .await
        .error(400, "E0000001");
    assert_eq!(
        body["errorSummary"],
        "Api validation failed: factorEnrollRequest"
    );
    // tokenLifetimeSeconds must be within 1..=86400.
    for bad in ["0", "86401", "soon"] {
        s.enroll(
            &id,
            &format!("?tokenLifetimeSeconds={bad}"),
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
        )
        .await
        .error(400, "E0000001");
    }
    let f = s
        .enroll(
            &id,
            "?tokenLifetimeSeconds=600",
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap().to_string();
    assert!(fid.starts_with("emf") && fid.len() == 20, "{fid}");
    assert_eq!(f["profile"]["email"], user.email);
    assert_eq!(f["_links"]["resend"][0]["name"], "email");
    let message = s.state().outbox().pop().unwrap();
    assert_eq!(message.channel, Channel::Email);
    assert_eq!(message.destination, user.email);
    assert_eq!((message.expires_at - message.sent_at).whole_seconds(), 600);
    assert_eq!(
        s.activate(&id, &fid, &message.code).await.ok()["status"],
        "ACTIVE"
    );

    // A code whose lifetime is over is "valid but outside the window".
    s.delete(&format!("/api/v1/users/{id}/factors/{fid}")).await;
    let f = s
        .enroll(
            &id,
            "?tokenLifetimeSeconds=1",
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap().to_string();
    let code = s.state().last_passcode(&fid).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = s.activate(&id, &fid, &code).await.error(403, "E0000083");
    assert_eq!(
        body["errorSummary"],
        "PassCode is valid but exceeded time window."
    );
}

#[tokio::test]
async fn activate_query_enrolls_phone_and_email_factors_as_active() {
    let s = Sim::new().await;
    let user = s.state().user("agent@example.com").unwrap();
    let id = user.id.clone();
    for body in [
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550120"}}),
        json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550121"}}),
        json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
    ] {
        let r = s.enroll(&id, "?activate=true", body).await;
        let f = r.ok();
        assert_eq!(f["status"], "ACTIVE", "{f}");
        assert_eq!(link_names(&f), ["self", "user", "verify"]);
        let fid = f["id"].as_str().unwrap();
        s.assert_event("user.mfa.factor.update", &r.request_id(), &id, fid);
        s.assert_event("user.mfa.factor.activate", &r.request_id(), &id, fid);
    }
    assert!(
        s.state().outbox().is_empty(),
        "nothing sent when activated at once"
    );
    // `activate` does not apply to TOTP: the factor still needs activation.
    let f = s
        .enroll(
            &id,
            "?activate=true",
            json!({"factorType": "token:software:totp", "provider": "OKTA"}),
        )
        .await
        .ok();
    assert_eq!(f["status"], "PENDING_ACTIVATION");
    s.enroll(
        &id,
        "?activate=maybe",
        json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
    )
    .await
    .error(400, "E0000001");
}

#[tokio::test]
async fn phone_and_email_verification_challenges() {
    let s = Sim::new().await;
    let user = s.state().user("manager@example.com").unwrap();
    let id = user.id.clone();
    let sms = s
        .enroll(
            &id,
            "?activate=true",
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550130"}}),
        )
        .await
        .ok();
    let fid = sms["id"].as_str().unwrap();
    let me = s.url(&format!("/api/v1/users/{id}/factors/{fid}"));
    let challenge = s.verify(&id, fid, None).await.ok();
    assert_eq!(challenge["factorResult"], "CHALLENGE");
    assert_eq!(challenge["profile"]["phoneNumber"], "+14155550130");
    assert_eq!(
        challenge["_links"]["verify"]["href"],
        format!("{me}/verify")
    );
    assert_eq!(challenge["_links"]["factor"]["href"], me);
    let code = s.state().last_passcode(fid).unwrap();
    // A second challenge within 30 s is refused.
    s.verify(&id, fid, None).await.error(429, "E0000109");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    s.verify(&id, fid, Some(json!({"passCode": wrong})))
        .await
        .error(403, "E0000068");
    let r = s.verify(&id, fid, Some(json!({"passCode": code}))).await;
    assert_eq!(r.ok(), json!({"factorResult": "SUCCESS"}));
    s.assert_event(
        "user.authentication.auth_via_mfa",
        &r.request_id(),
        &id,
        fid,
    );
    s.verify(&id, fid, Some(json!({"passCode": code})))
        .await
        .error(403, "E0000082");
    // A locked-out user cannot verify.
    assert!(s.state().set_user_status(&id, UserStatus::LockedOut));
    let body = s
        .verify(&id, fid, Some(json!({"passCode": "123456"})))
        .await
        .error(403, "E0000069");
    assert_eq!(body["errorSummary"], "User Locked");
    assert!(s.state().set_user_status(&id, UserStatus::Active));

    let email = s
        .enroll(
            &id,
            "?activate=true",
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
        )
        .await
        .ok();
    let eid = email["id"].as_str().unwrap();
    let challenge = s.verify(&id, eid, None).await.ok();
    assert_eq!(challenge["factorResult"], "CHALLENGE");
    // Email challenges have no cool-down.
    s.verify(&id, eid, None).await.ok();
    let code = s.state().last_passcode(eid).unwrap();
    assert_eq!(
        s.verify(&id, eid, Some(json!({"passCode": code})))
            .await
            .ok(),
        json!({"factorResult": "SUCCESS"})
    );
}

#[tokio::test]
async fn sixth_activation_attempt_within_five_minutes_is_rate_limited() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let f = s
        .enroll(
            &id,
            "",
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550140"}}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap();
    let code = s.state().last_passcode(fid).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let r = s.activate(&id, fid, wrong).await;
        assert_eq!(r.status, 403, "attempt {attempt}: {}", r.text);
        assert_eq!(r.json()["errorCode"], "E0000068");
    }
    // The sixth attempt is refused even with the right code, and so is a resend.
    let body = s.activate(&id, fid, &code).await.error(429, "E0000047");
    assert_eq!(
        body["errorSummary"],
        "API call exceeded rate limit due to too many requests."
    );
    s.post(
        &format!("/api/v1/users/{id}/factors/{fid}/resend"),
        Some(json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550140"}})),
    )
    .await
    .error(429, "E0000047");
    assert_eq!(
        s.state().factor(fid).unwrap().status,
        FactorStatus::PendingActivation
    );
    // TOTP factors are limited the same way.
    let t = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "OKTA"}),
        )
        .await
        .ok();
    let tid = t["id"].as_str().unwrap();
    for _ in 0..5 {
        s.activate(&id, tid, "12345").await.error(403, "E0000068");
    }
    s.activate(&id, tid, "12345").await.error(429, "E0000047");
}

#[tokio::test]
async fn resend_cool_down_per_phone_number() {
    let s = Sim::new().await;
    let user = s.state().user("agent@example.com").unwrap();
    let id = user.id.clone();
    let sms = s
        .enroll(
            &id,
            "",
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550150"}}),
        )
        .await
        .ok();
    let sid = sms["id"].as_str().unwrap();
    let (sim, uid) = (&s, id.as_str());
    let resend = move |fid: &str, body: Value| {
        let path = format!("/api/v1/users/{uid}/factors/{fid}/resend");
        async move { sim.post(&path, Some(body)).await }
    };
    let body = resend(
        sid,
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550150"}}),
    )
    .await
    .error(429, "E0000109");
    assert_eq!(
        body["errorSummary"],
        "An SMS message was recently sent. Please wait 30 seconds before trying again."
    );
    // The limit is per phone number, whoever enrolls it.
    let other = s.id("manager@example.com");
    s.enroll(
        &other,
        "",
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+1 415 555 0150"}}),
    )
    .await
    .error(429, "E0000109");
    assert!(s.state().factors(&other).is_empty(), "nothing enrolled");

    let call = s
        .enroll(
            &id,
            "",
            json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550151"}}),
        )
        .await
        .ok();
    let cid = call["id"].as_str().unwrap();
    let body = resend(
        cid,
        json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550151"}}),
    )
    .await
    .error(429, "E0000133");
    assert_eq!(
        body["errorSummary"],
        "A phone call was recently made. Please wait 30 seconds before trying again."
    );
    // Resend is only for the factor's own type, and only for sms/call/email.
    resend(cid, json!({"factorType": "sms", "provider": "OKTA"}))
        .await
        .error(400, "E0000001");

    // Email resends are allowed at once; only the newest code counts.
    let email = s
        .enroll(
            &id,
            "",
            json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
        )
        .await
        .ok();
    let eid = email["id"].as_str().unwrap();
    let first = s.state().last_passcode(eid).unwrap();
    let r = resend(
        eid,
        json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
    )
    .await;
    assert_eq!(r.ok()["status"], "PENDING_ACTIVATION");
    let second = s.state().last_passcode(eid).unwrap();
    let sent: Vec<_> = s
        .state()
        .outbox()
        .into_iter()
        .filter(|m| m.factor_id == eid)
        .collect();
    assert_eq!(sent.len(), 2);
    if first != second {
        s.activate(&id, eid, &first).await.error(403, "E0000068");
    }
    assert_eq!(s.activate(&id, eid, &second).await.ok()["status"], "ACTIVE");
    // An active factor has nothing to resend.
    resend(
        eid,
        json!({"factorType": "email", "provider": "OKTA", "profile": {"email": user.email}}),
    )
    .await
    .error(400, "E0000001");
}

#[tokio::test]
async fn duplicate_enrollments_and_phone_conflicts() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    s.enroll(
        &id,
        "",
        json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
    )
    .await
    .ok();
    let body = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
        )
        .await
        .error(400, "E0000001");
    assert_eq!(
        body["errorSummary"],
        "Api validation failed: factorEnrollRequest"
    );
    assert_eq!(causes(&body), ["A factor of this type is already set up."]);

    // A verified phone cannot be swapped for another number.
    s.enroll(
        &id,
        "?activate=true",
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550160"}}),
    )
    .await
    .ok();
    for query in ["", "?updatePhone=true"] {
        let body = s
            .enroll(
                &id,
                query,
                json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550161"}}),
            )
            .await
            .error(400, "E0000001");
        assert_eq!(
            body["errorSummary"],
            "Api validation failed: factorEnrollRequest"
        );
        assert_eq!(
            causes(&body),
            ["There is an existing verified phone number."]
        );
    }
    s.enroll(
        &id,
        "",
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550160"}}),
    )
    .await
    .error(400, "E0000001");

    // A pending phone can be replaced with updatePhone=true.
    let other = s.id("manager@example.com");
    let pending = s
        .enroll(
            &other,
            "",
            json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550162"}}),
        )
        .await
        .ok();
    let body = s
        .enroll(
            &other,
            "",
            json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550163"}}),
        )
        .await
        .error(400, "E0000001");
    assert_eq!(causes(&body), ["A factor of this type is already set up."]);
    let updated = s
        .enroll(
            &other,
            "?updatePhone=true",
            json!({"factorType": "call", "provider": "OKTA", "profile": {"phoneNumber": "+14155550163"}}),
        )
        .await
        .ok();
    assert_eq!(updated["id"], pending["id"]);
    assert_eq!(updated["profile"]["phoneNumber"], "+14155550163");
    let last = s.state().outbox().pop().unwrap();
    assert_eq!(last.destination, "+14155550163");
    assert_eq!(
        s.activate(&other, updated["id"].as_str().unwrap(), &last.code)
            .await
            .ok()["status"],
        "ACTIVE"
    );
}

#[tokio::test]
async fn enrollment_validation() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    for phone in [
        "555-0100",
        "+0123456",
        "+1 555 CALL NOW",
        "+1234567890123456",
    ] {
        let body = s
            .enroll(
                &id,
                "",
                json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": phone}}),
            )
            .await
            .error(400, "E0000001");
        assert!(
            causes(&body).iter().any(|c| c.starts_with("phoneNumber")),
            "{phone}: {body}"
        );
    }
    s.enroll(
        &id,
        "",
        json!({"factorType": "sms", "provider": "OKTA", "profile": {}}),
    )
    .await
    .error(400, "E0000001");
    // Not a factor type at all: the body is malformed.
    s.enroll(
        &id,
        "",
        json!({"factorType": "carrier-pigeon", "provider": "OKTA"}),
    )
    .await
    .error(400, "E0000003");
    // Factor types and providers the org does not enable.
    for (factor_type, provider) in [
        ("question", "OKTA"),
        ("webauthn", "FIDO"),
        ("signed_nonce", "OKTA"),
        ("sms", "GOOGLE"),
        ("push", "GOOGLE"),
    ] {
        s.enroll(
            &id,
            "",
            json!({"factorType": factor_type, "provider": provider}),
        )
        .await
        .error(400, "E0000001");
    }
    s.enroll(&id, "", json!({"provider": "OKTA"}))
        .await
        .error(400, "E0000001");
    let r = s
        .send(Method::POST, &format!("/api/v1/users/{id}/factors"), None)
        .await;
    r.error(400, "E0000003");
    assert!(s.state().factors(&id).is_empty());
}

#[tokio::test]
async fn push_enrollment_activation_and_verification() {
    let s = Sim::new().await;
    let user = s.state().user("agent@example.com").unwrap();
    let id = user.id.clone();
    // Okta Verify TOTP, removed together with push below.
    let totp = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "OKTA"}),
        )
        .await
        .ok();
    let f = s
        .enroll(&id, "", json!({"factorType": "push", "provider": "OKTA"}))
        .await
        .ok();
    let fid = f["id"].as_str().unwrap().to_string();
    assert!(fid.starts_with("opf") && fid.len() == 20, "{fid}");
    assert_eq!(f["status"], "PENDING_ACTIVATION");
    let me = s.url(&format!("/api/v1/users/{id}/factors/{fid}"));
    assert_eq!(link_names(&f), ["poll", "self", "user"]);
    assert_eq!(
        f["_links"]["poll"]["href"],
        format!("{me}/lifecycle/activate/poll")
    );
    let activation = &f["_embedded"]["activation"];
    assert_eq!(activation["factorResult"], "WAITING");
    assert!(activation["expiresAt"].as_str().unwrap().ends_with('Z'));
    let qr = activation["_links"]["qrcode"]["href"].as_str().unwrap();
    let image = s.get(qr.trim_start_matches(s.sim.base_url())).await;
    assert_eq!(image.status, 200);
    assert!(image.text.contains("<svg"));

    let poll = format!("/api/v1/users/{id}/factors/{fid}/lifecycle/activate/poll");
    let waiting = s.post(&poll, None).await.ok();
    assert_eq!(
        waiting["_embedded"]["activation"]["factorResult"],
        "WAITING"
    );
    // The simulated device scans the code.
    assert!(s.state().approve_push(&fid));
    let active = s.post(&poll, None).await.ok();
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(active["profile"]["credentialId"], user.login);
    assert_eq!(link_names(&active), ["self", "user", "verify"]);
    assert_eq!(s.events("user.mfa.factor.activate").len(), 1);

    // Verification: 201 WAITING with a poll link, then the device answers.
    let r = s.verify(&id, &fid, None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let challenge = r.json();
    assert_eq!(challenge["factorResult"], "WAITING");
    let tx = challenge["_links"]["poll"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(tx.starts_with(&format!("{me}/transactions/")), "{tx}");
    let tx_path = tx.trim_start_matches(s.sim.base_url()).to_string();
    assert_eq!(s.get(&tx_path).await.ok()["factorResult"], "WAITING");
    // The developer outbox page lists the request and answers it (no authentication).
    let page = s.send_as(None, Method::GET, "/dev/outbox", None).await;
    assert!(page.text.contains(&fid) && page.text.contains("sign-in"));
    let approved = s
        .send_as(
            None,
            Method::POST,
            &format!("/dev/push/{fid}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.status, 303);
    assert_eq!(approved.headers["location"], s.url("/dev/outbox"));
    assert_eq!(
        s.get(&tx_path).await.ok(),
        json!({"factorResult": "SUCCESS"})
    );
    let r = s.verify(&id, &fid, None).await;
    let tx = r.json()["_links"]["poll"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s.state().reject_push(&fid));
    let rejected = s.get(tx.trim_start_matches(s.sim.base_url())).await.ok();
    assert_eq!(rejected["factorResult"], "REJECTED");
    assert_eq!(rejected["_links"]["verify"]["href"], format!("{me}/verify"));
    assert!(!s.state().approve_push(&fid), "nothing waiting any more");
    s.get(&format!(
        "/api/v1/users/{id}/factors/{fid}/transactions/v2mst.nope"
    ))
    .await
    .error(404, "E0000007");

    // Unenrolling push also unenrolls Okta Verify TOTP.
    let r = s.delete(&format!("/api/v1/users/{id}/factors/{fid}")).await;
    assert_eq!(r.status, 204);
    assert!(s.state().factors(&id).is_empty());
    s.assert_event(
        "user.mfa.factor.deactivate",
        &r.request_id(),
        &id,
        totp["id"].as_str().unwrap(),
    );
}

#[tokio::test]
async fn unenroll_one_factor() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let f = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap();
    let path = format!("/api/v1/users/{id}/factors/{fid}");
    let r = s.delete(&path).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    s.assert_event("user.mfa.factor.deactivate", &r.request_id(), &id, fid);
    let body = s.get(&path).await.error(404, "E0000007");
    assert!(body["errorSummary"].as_str().unwrap().contains(fid));
    s.delete(&path).await.error(404, "E0000007");
    assert_eq!(
        s.get(&format!("/api/v1/users/{id}/factors")).await.ok(),
        json!([])
    );
    // Enrolling the same type again is possible afterwards.
    s.enroll(
        &id,
        "",
        json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
    )
    .await
    .ok();
    // Another user's factor is not found under this user.
    let other = s.id("manager@example.com");
    let theirs = s
        .enroll(
            &other,
            "",
            json!({"factorType": "token:software:totp", "provider": "OKTA"}),
        )
        .await
        .ok();
    s.get(&format!(
        "/api/v1/users/{id}/factors/{}",
        theirs["id"].as_str().unwrap()
    ))
    .await
    .error(404, "E0000007");
}

#[tokio::test]
async fn reset_factors_removes_everything_and_the_link() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let user_path = format!("/api/v1/users/{id}");
    let links = |u: &Value| u["_links"].as_object().unwrap().clone();
    assert!(!links(&s.get(&user_path).await.ok()).contains_key("resetFactors"));

    s.enroll(
        &id,
        "",
        json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+14155550170"}}),
    )
    .await
    .ok();
    s.enroll(
        &id,
        "?activate=true",
        json!({"factorType": "email", "provider": "OKTA", "profile": {"email": "agent@example.com"}}),
    )
    .await
    .ok();
    let u = s.get(&user_path).await.ok();
    assert_eq!(
        u["_links"]["resetFactors"],
        json!({"href": s.url(&format!("{user_path}/lifecycle/reset_factors")), "method": "POST"})
    );
    // Collections still carry only `self`.
    let list = s
        .get("/api/v1/users?search=profile.login%20eq%20%22agent%40example.com%22")
        .await
        .ok();
    assert_eq!(
        list[0]["_links"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["self"]
    );

    let r = s
        .post(&format!("{user_path}/lifecycle/reset_factors"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(s.state().factors(&id).is_empty());
    assert_eq!(
        s.get(&format!("/api/v1/users/{id}/factors")).await.ok(),
        json!([])
    );
    let u = s.get(&user_path).await.ok();
    assert!(!links(&u).contains_key("resetFactors"));
    assert_eq!(u["status"], "ACTIVE");
    let event = s.events("user.mfa.factor.reset_all").pop().unwrap();
    assert_eq!(
        event["debugContext"]["debugData"]["requestId"],
        r.request_id()
    );
    assert_eq!(event["target"][0]["id"], id);
    // Everything can be enrolled again.
    let catalog = s
        .get(&format!("/api/v1/users/{id}/factors/catalog"))
        .await
        .ok();
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "NOT_SETUP")
    );
}

#[tokio::test]
async fn deactivated_users_keep_their_factors_but_cannot_change_them() {
    let s = Sim::new().await;
    let id = s.id("manager@example.com");
    let f = s
        .enroll(
            &id,
            "",
            json!({"factorType": "token:software:totp", "provider": "GOOGLE"}),
        )
        .await
        .ok();
    let fid = f["id"].as_str().unwrap();
    assert!(s.state().set_user_status(&id, UserStatus::Deprovisioned));
    let body = s
        .delete(&format!("/api/v1/users/{id}/factors/{fid}"))
        .await
        .error(403, "E0000038");
    assert_eq!(
        body["errorSummary"],
        "This operation is not allowed in the user's current status."
    );
    s.enroll(
        &id,
        "",
        json!({"factorType": "token:software:totp", "provider": "OKTA"}),
    )
    .await
    .error(403, "E0000038");
    let code = totp_code(&s.state().totp_secret(fid).unwrap(), now_secs());
    s.activate(&id, fid, &code).await.error(403, "E0000038");
    let list = s.get(&format!("/api/v1/users/{id}/factors")).await.ok();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // No resetFactors link for a deactivated user, and the operation is refused.
    let u = s.get(&format!("/api/v1/users/{id}")).await.ok();
    assert!(u["_links"].get("resetFactors").is_none());
    s.post(&format!("/api/v1/users/{id}/lifecycle/reset_factors"), None)
        .await
        .error(403, "E0000038");
    // Deleting the user for good removes the factors too.
    assert_eq!(s.delete(&format!("/api/v1/users/{id}")).await.status, 204);
    assert!(s.state().factors(&id).is_empty());
}

#[tokio::test]
async fn user_id_must_be_an_id() {
    let s = Sim::new().await;
    let login = "agent@example.com";
    let enc = "agent%40example.com";
    let body = s
        .get(&format!("/api/v1/users/{enc}/factors"))
        .await
        .error(404, "E0000007");
    assert_eq!(
        body["errorSummary"],
        format!("Not found: Resource not found: {login} (User)")
    );
    s.enroll(
        enc,
        "",
        json!({"factorType": "token:software:totp", "provider": "OKTA"}),
    )
    .await
    .error(404, "E0000007");
    s.get(&format!("/api/v1/users/{enc}/factors/catalog"))
        .await
        .error(404, "E0000007");
    s.get("/api/v1/users/00uNoSuchUser0000000/factors")
        .await
        .error(404, "E0000007");
    let id = s.id(login);
    s.get(&format!("/api/v1/users/{id}/factors/ostfNoSuchFactor0000"))
        .await
        .error(404, "E0000007");
    s.activate(&id, "smsNoSuchFactor00000", "123456")
        .await
        .error(404, "E0000007");
}

#[tokio::test]
async fn authentication_is_required() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    let path = format!("/api/v1/users/{id}/factors");
    let body = s
        .send_as(None, Method::GET, &path, None)
        .await
        .error(403, "E0000005");
    assert_eq!(body["errorSummary"], "Invalid session");
    s.send_as(
        None,
        Method::POST,
        &path,
        Some(json!({"factorType": "token:software:totp", "provider": "OKTA"})),
    )
    .await
    .error(403, "E0000005");
    s.send_as(Some("SSWS not-a-token"), Method::GET, &path, None)
        .await
        .error(401, "E0000011");
    assert!(s.state().factors(&id).is_empty());
}

#[tokio::test]
async fn factor_rate_limit_buckets() {
    let s = Sim::new().await;
    let id = s.id("agent@example.com");
    for (method, path, bucket) in [
        (
            "GET",
            "/api/v1/users/00u1/factors",
            "GET /api/v1/users/{id}/factors",
        ),
        (
            "GET",
            "/api/v1/users/00u1/factors/catalog",
            "GET /api/v1/users/{id}/factors",
        ),
        (
            "POST",
            "/api/v1/users/00u1/factors",
            "POST /api/v1/users/{id}/factors",
        ),
        (
            "POST",
            "/api/v1/users/00u1/factors/sms1/verify",
            "POST /api/v1/users/{id}/factors",
        ),
        (
            "DELETE",
            "/api/v1/users/00u1/factors/sms1",
            "DELETE /api/v1/users/{id}/factors",
        ),
    ] {
        assert_eq!(SimState::rate_limit_bucket(method, path), bucket);
    }
    s.state()
        .set_rate_limit("GET /api/v1/users/{id}/factors", 2);
    let path = format!("/api/v1/users/{id}/factors");
    let first = s.get(&path).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-rate-limit-limit"], "2");
    assert_eq!(first.headers["x-rate-limit-remaining"], "1");
    s.get(&format!("{path}/catalog")).await.ok();
    let limited = s.get(&path).await;
    limited.error(429, "E0000047");
    assert_eq!(limited.headers["x-rate-limit-remaining"], "0");
    // Other buckets are unaffected.
    s.enroll(
        &id,
        "",
        json!({"factorType": "token:software:totp", "provider": "OKTA"}),
    )
    .await
    .ok();
}
