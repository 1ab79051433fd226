//! Signing keys of the simulated authorization server.
//!
//! The PEM files beside this module are test keys generated for the simulator only; they
//! protect nothing. Shipping them keeps start-up instant (RSA key generation in a debug
//! build takes seconds) and the demo deterministic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{Value, json};

const KEY_1: &str = include_str!("keys/sim-key-1.pem");
const KEY_2: &str = include_str!("keys/sim-key-2.pem");
/// A key the simulator never publishes: tokens signed with it must be refused.
const ROGUE: &str = include_str!("keys/rogue-key.pem");

pub struct SimKey {
    pub kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl SimKey {
    fn from_pem(kid: &str, pem: &str) -> anyhow::Result<SimKey> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)?;
        let public = private.to_public_key();
        let jwk = json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        Ok(SimKey {
            kid: kid.to_string(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            jwk,
        })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A DPoP proof signed with this key, its public JWK in the header.
    pub fn sign_dpop_proof(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk.clone())?);
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The published keys, the one in use, and the rogue key for negative tests.
pub struct KeyRing {
    keys: Vec<SimKey>,
    published: usize,
    active: usize,
    pub rogue: SimKey,
}

impl KeyRing {
    pub fn load() -> anyhow::Result<KeyRing> {
        Ok(KeyRing {
            keys: vec![
                SimKey::from_pem("sim-key-1", KEY_1)?,
                SimKey::from_pem("sim-key-2", KEY_2)?,
            ],
            published: 1,
            active: 0,
            rogue: SimKey::from_pem("rogue-key", ROGUE)?,
        })
    }

    pub fn active(&self) -> &SimKey {
        &self.keys[self.active]
    }

    /// Publishes the next key and signs with it from now on, as Okta's automatic rotation
    /// does. The previous key stays published so that tokens already issued stay valid.
    pub fn rotate(&mut self) {
        self.active = (self.active + 1) % self.keys.len();
        self.published = self.keys.len();
    }

    pub fn jwks(&self) -> Value {
        let keys: Vec<&Value> = self.keys[..self.published]
            .iter()
            .map(|k| k.jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// Finds a published key by `kid`.
    pub fn published(&self, kid: &str) -> Option<&SimKey> {
        self.keys[..self.published].iter().find(|k| k.kid == kid)
    }

    pub fn decoding_key(&self, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
        let key = self.published(kid)?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).ok()?;
        jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()
    }
}
