//! DPoP (RFC 9449) as Okta checks it (OKTA-FACTS.md §10.9): proofs at the org token endpoint
//! for service apps with `dpop_bound_access_tokens`, and at the Management API for the
//! DPoP-bound tokens they get (`cnf.jkt`). Nonces renew on request (tests) and the previous one
//! stays valid, as Okta keeps old nonces valid for a while.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::random_token;

/// How far in the past a proof's `iat` may be, and how far in the future (seconds).
const IAT_PAST: i64 = 300;
const IAT_FUTURE: i64 = 60;

/// The simulator's DPoP state.
#[derive(Debug)]
pub struct DpopState {
    pub nonce: String,
    pub previous_nonce: Option<String>,
    /// `jkt` + `jti` of proofs already accepted, with when they may be forgotten.
    pub seen: HashMap<String, i64>,
    /// Whether the Management API also asks for a nonce (401 `use_dpop_nonce`). Okta's
    /// Management API is not known to; tests turn it on.
    pub api_requires_nonce: bool,
}

impl Default for DpopState {
    fn default() -> Self {
        DpopState {
            nonce: random_token(32),
            previous_nonce: None,
            seen: HashMap::new(),
            api_requires_nonce: false,
        }
    }
}

impl DpopState {
    /// A new nonce; the one before it stays valid, older ones are stale.
    pub fn rotate(&mut self) {
        let old = std::mem::replace(&mut self.nonce, random_token(32));
        self.previous_nonce = Some(old);
    }

    fn nonce_ok(&self, nonce: Option<&str>) -> bool {
        nonce.is_some_and(|n| n == self.nonce || self.previous_nonce.as_deref() == Some(n))
    }
}

/// Why a proof was refused: `invalid_dpop_proof` or `use_dpop_nonce`, with Okta's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: &'static str,
}

const fn invalid(description: &'static str) -> Refusal {
    Refusal {
        error: "invalid_dpop_proof",
        description,
    }
}

pub const MISSING: Refusal = invalid("The DPoP proof JWT header is missing.");

/// What a request's proof must match.
pub struct Expect<'a> {
    pub method: &'a Method,
    /// The URL of the request as the server sees it: its base and the decoded path.
    pub htu: String,
    /// The access token presented with it (Management API calls), for `ath` and `cnf.jkt`.
    pub token: Option<(&'a str, &'a str)>,
    /// The nonce the server asks for, if it asks for one.
    pub nonce_required: bool,
    pub nonce_description: &'static str,
}

/// Checks the `DPoP` header of a request; returns the proof key's thumbprint (`jkt`).
pub fn check(
    store: &mut super::Store,
    headers: &HeaderMap,
    expect: &Expect<'_>,
) -> Result<String, Refusal> {
    let mut values = headers.get_all("dpop").iter();
    let (Some(proof), None) = (values.next(), values.next()) else {
        return Err(MISSING);
    };
    let proof = proof
        .to_str()
        .map_err(|_| invalid("DPoP proof JWT cannot be parsed."))?;
    let (jkt, claims) = verify_signature(proof)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    check_claims(&claims, expect, &jkt, now)?;
    let jti = claims["jti"].as_str().unwrap_or_default();
    let dpop = &mut store.dpop;
    dpop.seen.retain(|_, until| *until >= now);
    let key = format!("{jkt}\u{0}{jti}");
    if dpop.seen.contains_key(&key) {
        return Err(invalid("The DPoP proof JWT has already been used."));
    }
    if expect.nonce_required && !dpop.nonce_ok(claims["nonce"].as_str()) {
        return Err(Refusal {
            error: "use_dpop_nonce",
            description: expect.nonce_description,
        });
    }
    dpop.seen.insert(key, now + IAT_PAST + IAT_FUTURE);
    Ok(jkt)
}

/// `typ`, an asymmetric `alg`, a public `jwk` in the header, and a signature by that key.
fn verify_signature(proof: &str) -> Result<(String, Value), Refusal> {
    use jsonwebtoken::Algorithm::*;
    let unparsable = invalid("DPoP proof JWT cannot be parsed.");
    let header = jsonwebtoken::decode_header(proof).map_err(|_| unparsable.clone())?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid("The DPoP proof JWT 'typ' header is invalid."));
    }
    if !matches!(header.alg, RS256 | RS384 | RS512 | ES256 | ES384) {
        return Err(invalid("The DPoP proof JWT 'alg' header is invalid."));
    }
    // A private key in the header is refused, whatever else it holds.
    let raw_header: Value = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(unparsable)?;
    let jwk: Option<Jwk> = header.jwk.filter(|_| raw_header["jwk"].get("d").is_none());
    let bad_jwk = || invalid("The DPoP proof JWT 'jwk' header is invalid.");
    let jwk = jwk.ok_or_else(bad_jwk)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| bad_jwk())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|_| invalid("The DPoP proof JWT signature is invalid."))?
        .claims;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| bad_jwk())?;
    Ok((jkt, claims))
}

fn check_claims(claims: &Value, expect: &Expect<'_>, jkt: &str, now: i64) -> Result<(), Refusal> {
    if claims["htm"].as_str() != Some(expect.method.as_str()) {
        return Err(invalid("'htm' claim in the DPoP proof JWT is invalid."));
    }
    if claims["htu"].as_str() != Some(expect.htu.as_str()) {
        return Err(invalid("'htu' claim in the DPoP proof JWT is invalid."));
    }
    match claims["iat"].as_i64() {
        Some(iat) if iat >= now - IAT_PAST && iat <= now + IAT_FUTURE => {}
        _ => return Err(invalid("'iat' claim in the DPoP proof JWT is invalid.")),
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err(invalid("'jti' claim in the DPoP proof JWT is invalid."));
    }
    if let Some((token, bound_to)) = expect.token {
        if claims["ath"].as_str() != Some(ath(token).as_str()) {
            return Err(invalid("'ath' claim in the DPoP proof JWT is invalid."));
        }
        if jkt != bound_to {
            return Err(invalid(
                "The DPoP proof JWT key does not match the key the access token is bound to.",
            ));
        }
    }
    Ok(())
}

/// base64url SHA-256 of an access token (`ath`).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The request URL as Okta compares it with `htu`: the org's base URL and the decoded path.
pub fn htu(base: &str, path: &str) -> String {
    let decoded = percent_decode(path);
    format!("{base}{decoded}")
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `algs` Okta lists in its DPoP challenges.
pub const ALGS: &str = "RS256 RS384 RS512 ES256 ES384 ES512";

/// `DPoP-Nonce: …` for an answer that asks for the nonce.
pub fn nonce_header(store: &super::Store) -> Option<HeaderValue> {
    HeaderValue::from_str(&store.dpop.nonce).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_decodes_the_path() {
        assert_eq!(
            htu("http://127.0.0.1:1", "/api/v1/users/ada%40example.com"),
            "http://127.0.0.1:1/api/v1/users/ada@example.com"
        );
        assert_eq!(percent_decode("/a%2"), "/a%2");
    }

    #[test]
    fn the_previous_nonce_stays_valid_older_ones_do_not() {
        let mut d = DpopState::default();
        let first = d.nonce.clone();
        d.rotate();
        assert!(d.nonce_ok(Some(&first)));
        d.rotate();
        assert!(!d.nonce_ok(Some(&first)));
        assert!(!d.nonce_ok(None));
    }
}
