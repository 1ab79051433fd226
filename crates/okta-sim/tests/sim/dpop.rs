//! DPoP as Okta checks it (OKTA-FACTS.md §10.9): the demo service app is DPoP-bound, so its
//! token requests need a proof and a nonce, its tokens carry `cnf.jkt`, and the Management API
//! checks every proof of such a token.

use std::net::SocketAddr;

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use okta_sim::{
    RunningSim, SERVICE_APP_CLIENT_ID, SERVICE_APP_KEY_PEM, SERVICE_APP_KID, SimOptions,
};
use serde_json::{Value, json};

/// A second RSA key: the "other key" a proof may be signed with.
const OTHER_PEM: &str = include_str!("../../src/keys/rogue-key.pem");

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// `(error, error_description)` of the token endpoint's JSON answer.
    fn oauth_error(&self) -> (String, String) {
        let j = self.json();
        (
            j["error"].as_str().unwrap_or_default().to_string(),
            j["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn jwk_of(pem: &str) -> Jwk {
    serde_json::from_value(okta_sim::org_as::public_jwk_from_pem(pem, "proof").unwrap()).unwrap()
}

/// A proof whose header names the key of `header_pem`, signed with `signing_pem`.
fn proof_with(signing_pem: &str, header_pem: &str, typ: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some(typ.into());
    header.jwk = Some(jwk_of(header_pem));
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(signing_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn proof(claims: Value) -> String {
    proof_with(SERVICE_APP_KEY_PEM, SERVICE_APP_KEY_PEM, "dpop+jwt", claims)
}

fn ath(token: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token))
}

struct Dpop {
    sim: RunningSim,
    http: reqwest::Client,
}

impl Dpop {
    async fn new() -> Dpop {
        crate::harness::init_tls();
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions {
                end_users: 5,
                ..SimOptions::default()
            },
        )
        .await
        .unwrap();
        Dpop {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.sim.base_url())
    }

    fn claims(&self, htm: &str, htu: &str) -> Value {
        json!({ "htm": htm, "htu": htu, "iat": now(), "jti": uuid::Uuid::new_v4().to_string() })
    }

    fn token_claims(&self) -> Value {
        let mut c = self.claims("POST", &self.token_url());
        c["nonce"] = json!(self.sim.state.dpop_nonce());
        c
    }

    fn assertion(&self) -> String {
        let claims = json!({
            "iss": SERVICE_APP_CLIENT_ID, "sub": SERVICE_APP_CLIENT_ID, "aud": self.token_url(),
            "iat": now(), "exp": now() + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(SERVICE_APP_KID.into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(SERVICE_APP_KEY_PEM.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    async fn token(&self, proof: Option<&str>) -> Answer {
        let assertion = self.assertion();
        let mut request = self.http.post(self.token_url()).form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.users.read okta.users.manage"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        answer(request.send().await.unwrap()).await
    }

    /// A DPoP-bound access token of the demo service app.
    async fn bound_token(&self) -> String {
        let r = self.token(Some(&proof(self.token_claims()))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    async fn api(&self, path: &str, authorization: &str, proof: Option<&str>) -> Answer {
        let mut request = self
            .http
            .get(format!("{}{path}", self.sim.base_url()))
            .header("authorization", authorization);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        answer(request.send().await.unwrap()).await
    }

    /// A correct proof for `GET {path}` with `token`.
    fn api_proof(&self, path: &str, token: &str) -> Value {
        let mut c = self.claims("GET", &format!("{}{path}", self.sim.base_url()));
        c["ath"] = json!(ath(token));
        c
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

#[tokio::test]
async fn the_token_endpoint_requires_a_valid_proof_and_a_nonce() {
    let d = Dpop::new().await;
    let missing = d.token(None).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.oauth_error(),
        (
            "invalid_dpop_proof".into(),
            "The DPoP proof JWT header is missing.".into()
        )
    );

    // No nonce: 400 use_dpop_nonce and the nonce to use.
    let first = d
        .token(Some(&proof(d.claims("POST", &d.token_url()))))
        .await;
    assert_eq!(first.status, 400);
    assert_eq!(first.oauth_error().0, "use_dpop_nonce");
    assert_eq!(
        first.oauth_error().1,
        "Authorization server requires nonce in DPoP proof."
    );
    assert_eq!(first.header("dpop-nonce"), d.sim.state.dpop_nonce());

    let ok = d.token(Some(&proof(d.token_claims()))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["token_type"], "DPoP");
    let token = ok.json()["access_token"].as_str().unwrap().to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let jkt = jwk_of(SERVICE_APP_KEY_PEM)
        .thumbprint(ThumbprintHash::SHA256)
        .unwrap();
    assert_eq!(claims["cnf"]["jkt"], jkt, "bound to the proof's key");

    // Each defect is refused with its own description.
    let refused = |r: Answer| {
        assert_eq!(r.status, 400, "{}", r.body);
        r.oauth_error()
    };
    let mut wrong_htu = d.token_claims();
    wrong_htu["htu"] = json!("http://localhost:1/oauth2/v1/token");
    assert_eq!(
        refused(d.token(Some(&proof(wrong_htu))).await).1,
        "'htu' claim in the DPoP proof JWT is invalid."
    );
    let mut wrong_htm = d.token_claims();
    wrong_htm["htm"] = json!("GET");
    assert_eq!(
        refused(d.token(Some(&proof(wrong_htm))).await).1,
        "'htm' claim in the DPoP proof JWT is invalid."
    );
    let mut old = d.token_claims();
    old["iat"] = json!(now() - 3600);
    assert_eq!(
        refused(d.token(Some(&proof(old))).await).1,
        "'iat' claim in the DPoP proof JWT is invalid."
    );
    let typ = proof_with(
        SERVICE_APP_KEY_PEM,
        SERVICE_APP_KEY_PEM,
        "JWT",
        d.token_claims(),
    );
    assert_eq!(
        refused(d.token(Some(&typ)).await).1,
        "The DPoP proof JWT 'typ' header is invalid."
    );
    let forged = proof_with(OTHER_PEM, SERVICE_APP_KEY_PEM, "dpop+jwt", d.token_claims());
    assert_eq!(
        refused(d.token(Some(&forged)).await).1,
        "The DPoP proof JWT signature is invalid."
    );
    let once = proof(d.token_claims());
    assert_eq!(d.token(Some(&once)).await.status, 200);
    assert_eq!(
        refused(d.token(Some(&once)).await).1,
        "The DPoP proof JWT has already been used."
    );

    // The previous nonce stays valid after a renewal; an older one is stale.
    let mut stale = d.token_claims();
    d.sim.state.rotate_dpop_nonce();
    let mut previous = stale.clone();
    previous["jti"] = json!("previous-nonce");
    assert_eq!(d.token(Some(&proof(previous))).await.status, 200);
    d.sim.state.rotate_dpop_nonce();
    stale["jti"] = json!("stale-nonce");
    let r = d.token(Some(&proof(stale))).await;
    assert_eq!(refused_nonce(&r), d.sim.state.dpop_nonce());
}

/// The nonce a `use_dpop_nonce` answer hands out.
fn refused_nonce(r: &Answer) -> String {
    assert_eq!(
        (r.status, r.oauth_error().0.as_str()),
        (400, "use_dpop_nonce")
    );
    r.header("dpop-nonce")
}

/// `(status, error, error_description)` of a Management API DPoP challenge.
fn challenge(r: &Answer) -> (u16, String, String) {
    let value = r.header("www-authenticate");
    assert!(value.starts_with("DPoP algs=\""), "{value}");
    let param = |name: &str| {
        let start = value.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        value[start..start + value[start..].find('"').unwrap()].to_string()
    };
    assert_eq!(r.body, "", "DPoP challenges carry no body");
    (r.status, param("error"), param("error_description"))
}

#[tokio::test]
async fn the_management_api_checks_every_proof_of_a_bound_token() {
    let d = Dpop::new().await;
    let token = d.bound_token().await;
    let dpop = format!("DPoP {token}");
    let path = "/api/v1/users";
    let missing = (
        400,
        "invalid_dpop_proof".to_string(),
        "The DPoP proof JWT header is missing.".to_string(),
    );
    // A bound token is refused as a bearer token, and without a proof.
    assert_eq!(
        challenge(&d.api(path, &format!("Bearer {token}"), None).await),
        missing
    );
    assert_eq!(challenge(&d.api(path, &dpop, None).await), missing);

    let good = proof(d.api_proof(path, &token));
    let ok = d.api(path, &dpop, Some(&good)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let replay = d.api(path, &dpop, Some(&good)).await;
    assert_eq!(
        challenge(&replay).2,
        "The DPoP proof JWT has already been used."
    );

    let mut wrong_htu = d.api_proof(path, &token);
    wrong_htu["htu"] = json!(format!("{}/api/v1/groups", d.sim.base_url()));
    assert_eq!(
        challenge(&d.api(path, &dpop, Some(&proof(wrong_htu))).await).2,
        "'htu' claim in the DPoP proof JWT is invalid."
    );
    let mut wrong_ath = d.api_proof(path, &token);
    wrong_ath["ath"] = json!(ath("another token"));
    assert_eq!(
        challenge(&d.api(path, &dpop, Some(&proof(wrong_ath))).await).2,
        "'ath' claim in the DPoP proof JWT is invalid."
    );
    // Signed by another key, named in the header: valid as a JWT, but not the token's key.
    let other = proof_with(OTHER_PEM, OTHER_PEM, "dpop+jwt", d.api_proof(path, &token));
    assert_eq!(
        challenge(&d.api(path, &dpop, Some(&other)).await),
        (
            400,
            "invalid_dpop_proof".into(),
            "The DPoP proof JWT key does not match the key the access token is bound to.".into()
        )
    );

    // Okta compares htu with the decoded path.
    let by_login = "/api/v1/users/agent%40example.com";
    let mut decoded = d.api_proof(by_login, &token);
    decoded["htu"] = json!(format!(
        "{}/api/v1/users/agent@example.com",
        d.sim.base_url()
    ));
    let r = d.api(by_login, &dpop, Some(&proof(decoded))).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // When the API asks for a nonce: 401 use_dpop_nonce with DPoP-Nonce, then it works.
    d.sim.state.require_api_dpop_nonce(true);
    let r = d
        .api(path, &dpop, Some(&proof(d.api_proof(path, &token))))
        .await;
    assert_eq!(
        challenge(&r),
        (
            401,
            "use_dpop_nonce".into(),
            "Resource server requires nonce in DPoP proof.".into()
        )
    );
    let mut with_nonce = d.api_proof(path, &token);
    with_nonce["nonce"] = json!(r.header("dpop-nonce"));
    assert_eq!(
        d.api(path, &dpop, Some(&proof(with_nonce))).await.status,
        200
    );
}

#[tokio::test]
async fn bearer_tokens_stop_working_when_the_app_starts_requiring_dpop() {
    let d = Dpop::new().await;
    d.sim
        .state
        .set_service_app_dpop(SERVICE_APP_CLIENT_ID, false);
    let r = d.token(None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "Bearer");
    let bearer = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    assert_eq!(d.api("/api/v1/users", &bearer, None).await.status, 200);
    d.sim
        .state
        .set_service_app_dpop(SERVICE_APP_CLIENT_ID, true);
    let refused = d.api("/api/v1/users", &bearer, None).await;
    assert_eq!(challenge(&refused).1, "invalid_dpop_proof");
}
