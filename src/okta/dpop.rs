//! DPoP (RFC 9449) for OAuth 2.0 for Okta (OKTA-FACTS.md §1.2, §10.9): an ES256 key pair made
//! at start-up and kept in memory only (never the `private_key_jwt` key), the proofs sent with
//! token requests and Management API calls, the nonces Okta hands out, and Okta's
//! `WWW-Authenticate: DPoP …` challenges.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

/// `okta.oauth.dpop`: `true`, `false` or `"auto"` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// Plain bearer tokens until Okta asks for DPoP, then DPoP for the life of the process.
    #[default]
    Auto,
    /// A proof with every token request and every call.
    On,
    /// Never; a service app that requires DPoP is refused.
    Off,
}

impl<'de> Deserialize<'de> for DpopMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(true) => Ok(DpopMode::On),
            Raw::Flag(false) => Ok(DpopMode::Off),
            Raw::Word(w) => match w.to_ascii_lowercase().as_str() {
                "auto" => Ok(DpopMode::Auto),
                "true" => Ok(DpopMode::On),
                "false" => Ok(DpopMode::Off),
                other => Err(serde::de::Error::custom(format!(
                    "okta.oauth.dpop must be true, false or \"auto\", not {other:?}"
                ))),
            },
        }
    }
}

impl std::fmt::Display for DpopMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DpopMode::Auto => "auto",
            DpopMode::On => "true",
            DpopMode::Off => "false",
        })
    }
}

/// The proof key: an ES256 key pair generated in memory, its public JWK and its thumbprint.
pub struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
    thumbprint: String,
}

impl DpopKey {
    /// A fresh P-256 key from the system's random source.
    pub fn generate() -> anyhow::Result<DpopKey> {
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::try_generate()
            .map_err(|e| anyhow::anyhow!("generating the DPoP key: {e}"))?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding the DPoP key: {e}"))?;
        let key = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        // The header carries the public key only: kty, crv, x, y.
        jwk.common = Default::default();
        let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256)?;
        Ok(DpopKey {
            key,
            jwk,
            thumbprint,
        })
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The RFC 7638 SHA-256 thumbprint Okta binds tokens to (`cnf.jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for one request: `htm`, `htu`, `iat`, a fresh `jti`, `ath` when a token is
    /// presented, and the server's nonce when it gave one.
    pub fn proof(
        &self,
        method: &Method,
        url: &Url,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let claims = ProofClaims {
            htm: method.as_str(),
            htu: htu(url),
            iat: time::OffsetDateTime::now_utc().unix_timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            ath: access_token.map(ath),
            nonce,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    htm: &'a str,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

/// `htu`: scheme, host, port and path, without query and fragment. The path is percent-decoded
/// because Okta decodes the request path before comparing it (a login in the path, `%40`).
pub fn htu(url: &Url) -> String {
    let mut origin = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        origin.push_str(&format!(":{port}"));
    }
    let path = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
    format!("{origin}{path}")
}

/// `ath`: base64url (no padding) of the SHA-256 of the access token.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// A `WWW-Authenticate: DPoP …` challenge: its `error` code and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub error: Option<String>,
    pub description: Option<String>,
}

/// The DPoP challenge among the `WWW-Authenticate` headers, if any.
pub fn challenge(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, params) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
            scheme.eq_ignore_ascii_case("dpop").then(|| {
                let params = auth_params(params);
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                Challenge {
                    error: get("error"),
                    description: get("error_description"),
                }
            })
        })
}

/// `k="v", k2=v2` → pairs; quoted values may hold commas and `\"`.
fn auth_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = input.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Which server a nonce belongs to (RFC 9449 keeps them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The org authorization server's token endpoint.
    Token,
    /// The Management API.
    Api,
}

/// The client's DPoP state: the mode, whether proofs are sent now, the key, the nonces.
pub struct Dpop {
    mode: DpopMode,
    on: AtomicBool,
    key: DpopKey,
    token_nonce: Mutex<Option<String>>,
    api_nonce: Mutex<Option<String>>,
}

impl Dpop {
    pub fn new(mode: DpopMode) -> anyhow::Result<Dpop> {
        Ok(Dpop {
            mode,
            on: AtomicBool::new(mode == DpopMode::On),
            key: DpopKey::generate()?,
            token_nonce: Mutex::new(None),
            api_nonce: Mutex::new(None),
        })
    }

    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    pub fn key(&self) -> &DpopKey {
        &self.key
    }

    /// Whether token requests carry a proof now.
    pub fn enabled(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// With `auto`, turns DPoP on for the life of the process (logged once). True when it was
    /// off and is on now, so the caller may send its request once more.
    pub fn switch_on(&self, what: &str) -> bool {
        if self.mode != DpopMode::Auto || self.on.swap(true, Ordering::Relaxed) {
            return false;
        }
        tracing::info!(
            asked_by = what,
            "Okta asks for DPoP: the portal sends DPoP proofs from now on (okta.oauth.dpop = \"auto\")"
        );
        true
    }

    fn slot(&self, server: Server) -> &Mutex<Option<String>> {
        match server {
            Server::Token => &self.token_nonce,
            Server::Api => &self.api_nonce,
        }
    }

    /// The nonce last handed out by this server.
    pub fn nonce(&self, server: Server) -> Option<String> {
        self.slot(server).lock().ok().and_then(|n| n.clone())
    }

    /// Keeps a new nonce from a `DPoP-Nonce` header; true when it differs from the one kept.
    pub fn note_nonce(&self, server: Server, headers: &HeaderMap) -> bool {
        let Some(new) = headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        else {
            return false;
        };
        let Ok(mut slot) = self.slot(server).lock() else {
            return false;
        };
        if slot.as_deref() == Some(new) {
            return false;
        }
        *slot = Some(new.to_string());
        true
    }

    /// A proof for the token endpoint, with the token endpoint's nonce.
    pub fn token_proof(&self, token_url: &Url) -> Result<String, jsonwebtoken::errors::Error> {
        let nonce = self.nonce(Server::Token);
        self.key
            .proof(&Method::POST, token_url, None, nonce.as_deref())
    }

    /// A proof for a Management API call made with `access_token`.
    pub fn api_proof(
        &self,
        method: &Method,
        url: &Url,
        access_token: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let nonce = self.nonce(Server::Api);
        self.key
            .proof(method, url, Some(access_token), nonce.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use reqwest::header::HeaderValue;
    use serde_json::Value;

    /// Verifies a proof with the public JWK from its own header, as Okta does.
    fn verify(proof: &str) -> (Header, Value) {
        let header = jsonwebtoken::decode_header(proof).unwrap();
        let key = DecodingKey::from_jwk(header.jwk.as_ref().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
            .unwrap()
            .claims;
        (header, claims)
    }

    #[test]
    fn a_proof_is_signed_by_the_key_in_its_header_and_says_what_it_is_for() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://example.okta.com/api/v1/users?search=x#frag").unwrap();
        let proof = key
            .proof(&Method::GET, &url, Some("the-token"), Some("n-1"))
            .unwrap();
        let (header, claims) = verify(&proof);
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.jwk.as_ref(), Some(key.public_jwk()));
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none(), "never the private part");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://example.okta.com/api/v1/users");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], ath("the-token"));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((claims["iat"].as_i64().unwrap() - now).abs() <= 2);
        // Signed by another key, the same proof does not verify.
        let other = DpopKey::generate().unwrap();
        let wrong = DecodingKey::from_jwk(other.public_jwk()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        assert!(jsonwebtoken::decode::<Value>(&proof, &wrong, &validation).is_err());
    }

    #[test]
    fn every_proof_has_its_own_jti_and_token_proofs_have_no_ath() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://example.okta.com/oauth2/v1/token").unwrap();
        let a = verify(&key.proof(&Method::POST, &url, None, None).unwrap()).1;
        let b = verify(&key.proof(&Method::POST, &url, None, None).unwrap()).1;
        assert_ne!(a["jti"], b["jti"]);
        assert!(a.get("ath").is_none());
        assert!(a.get("nonce").is_none());
        assert_eq!(a["htm"], "POST");
        assert_eq!(a["htu"], "https://example.okta.com/oauth2/v1/token");
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // SHA-256("abc"), RFC 4634 test vector, base64url without padding.
        assert_eq!(ath("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[test]
    fn htu_keeps_the_port_and_decodes_the_path() {
        let url = Url::parse("http://127.0.0.1:8081/api/v1/users/ada%40example.com?x=1").unwrap();
        assert_eq!(
            htu(&url),
            "http://127.0.0.1:8081/api/v1/users/ada@example.com"
        );
    }

    #[test]
    fn the_proof_key_is_never_the_private_key_jwt_key() {
        let a = DpopKey::generate().unwrap();
        let b = DpopKey::generate().unwrap();
        assert_ne!(a.thumbprint(), b.thumbprint(), "a new key every start");
        // The service app's key is RSA; the proof key is an EC key of its own.
        let service =
            jsonwebtoken::EncodingKey::from_rsa_pem(okta_sim::SERVICE_APP_KEY_PEM.as_bytes())
                .unwrap();
        let service_jwk = Jwk::from_encoding_key(&service, Algorithm::RS256).unwrap();
        assert_ne!(
            service_jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            a.thumbprint()
        );
        assert_eq!(serde_json::to_value(a.public_jwk()).unwrap()["kty"], "EC");
    }

    #[test]
    fn nonces_are_kept_per_server_and_renewed() {
        let dpop = Dpop::new(DpopMode::On).unwrap();
        let mut headers = HeaderMap::new();
        assert!(!dpop.note_nonce(Server::Token, &headers));
        headers.insert("dpop-nonce", HeaderValue::from_static("n1"));
        assert!(dpop.note_nonce(Server::Token, &headers));
        assert!(!dpop.note_nonce(Server::Token, &headers), "same nonce");
        assert_eq!(dpop.nonce(Server::Token).as_deref(), Some("n1"));
        assert_eq!(dpop.nonce(Server::Api), None);
        headers.insert("dpop-nonce", HeaderValue::from_static("n2"));
        assert!(dpop.note_nonce(Server::Token, &headers));
        let url = Url::parse("https://example.okta.com/oauth2/v1/token").unwrap();
        let (_, claims) = verify(&dpop.token_proof(&url).unwrap());
        assert_eq!(claims["nonce"], "n2");
        let api = Url::parse("https://example.okta.com/api/v1/users").unwrap();
        let (_, claims) = verify(&dpop.api_proof(&Method::GET, &api, "t").unwrap());
        assert!(claims.get("nonce").is_none(), "the API gave no nonce yet");
    }

    #[test]
    fn auto_switches_on_once_and_only_auto_switches() {
        let auto = Dpop::new(DpopMode::Auto).unwrap();
        assert!(!auto.enabled());
        assert!(auto.switch_on("test"));
        assert!(auto.enabled());
        assert!(!auto.switch_on("test"), "already on");
        let off = Dpop::new(DpopMode::Off).unwrap();
        assert!(!off.switch_on("test"));
        assert!(!off.enabled());
        assert!(Dpop::new(DpopMode::On).unwrap().enabled());
    }

    #[test]
    fn dpop_challenges_are_read_by_their_error_code() {
        let mut headers = HeaderMap::new();
        headers.append(
            reqwest::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"DPoP algs="RS256 ES256", realm="https://o.example", scope="okta.users.read", error="invalid_dpop_proof", error_description="'htu' claim in the DPoP proof JWT is invalid.", resource="/api/v1/users""#,
            ),
        );
        let c = challenge(&headers).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_dpop_proof"));
        assert_eq!(
            c.description.as_deref(),
            Some("'htu' claim in the DPoP proof JWT is invalid.")
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(
            reqwest::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        assert_eq!(challenge(&bearer), None);
        let mut nonce = HeaderMap::new();
        nonce.insert(
            reqwest::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"DPoP error="use_dpop_nonce", error_description="a \"quoted\", comma""#,
            ),
        );
        let c = challenge(&nonce).unwrap();
        assert_eq!(c.error.as_deref(), Some("use_dpop_nonce"));
        assert_eq!(c.description.as_deref(), Some("a \"quoted\", comma"));
    }

    #[test]
    fn the_setting_reads_true_false_and_auto() {
        #[derive(Deserialize)]
        struct S {
            dpop: DpopMode,
        }
        let read =
            |v: &str| serde_json::from_str::<S>(&format!("{{\"dpop\": {v}}}")).map(|s| s.dpop);
        assert_eq!(read("true").unwrap(), DpopMode::On);
        assert_eq!(read("false").unwrap(), DpopMode::Off);
        assert_eq!(read("\"auto\"").unwrap(), DpopMode::Auto);
        assert_eq!(read("\"true\"").unwrap(), DpopMode::On);
        assert!(read("\"sometimes\"").is_err());
    }
}
