//! Proof of work, ALTCHA-compatible (`altcha-lib-rs`): a signed challenge with an expiry in
//! its salt, solved by the browser (static/js/registration.js) or a JSON client and sent back
//! as the base64 JSON payload ALTCHA widgets send. The crate does not remember solutions, so
//! this module does: a solved challenge is accepted once, until it expires — by one edge of
//! all of them when they share Redis ([`Shared::claim_once`]).

use std::time::Duration;

use altcha_lib_rs::{Challenge, ChallengeOptions, Payload};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use crate::cluster::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    #[error("no proof of work was sent")]
    Missing,
    #[error("the proof of work is not valid")]
    Invalid,
    #[error("the proof of work has expired")]
    Expired,
    #[error("the proof of work was already used")]
    Reused,
}

pub struct ProofOfWork {
    key: SecretString,
    ttl: Duration,
    /// Where spent challenges are remembered until they expire.
    spent: Shared,
}

impl ProofOfWork {
    pub fn new(key: SecretString, ttl: Duration, spent: Shared) -> ProofOfWork {
        ProofOfWork { key, ttl, spent }
    }

    /// A fresh challenge hiding a number up to `max_number`.
    pub fn challenge(&self, max_number: u64) -> Result<Challenge, altcha_lib_rs::error::Error> {
        let ttl = chrono::TimeDelta::seconds(self.ttl.as_secs() as i64);
        altcha_lib_rs::create_challenge(ChallengeOptions {
            hmac_key: self.key.expose_secret(),
            max_number: Some(max_number),
            expires: Some(chrono::Utc::now() + ttl),
            ..ChallengeOptions::default()
        })
    }

    /// Checks a base64 ALTCHA payload and spends it: a second use is refused.
    pub async fn spend(&self, encoded: Option<&str>) -> Result<(), PowError> {
        let encoded = encoded
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(PowError::Missing)?;
        let json = STANDARD.decode(encoded).map_err(|_| PowError::Invalid)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| PowError::Invalid)?;
        let expires = expires_of(&payload.salt).ok_or(PowError::Invalid)?;
        let now = chrono::Utc::now().timestamp();
        if expires < now {
            return Err(PowError::Expired);
        }
        altcha_lib_rs::verify_solution(&payload, self.key.expose_secret(), true).map_err(|e| {
            match e {
                altcha_lib_rs::error::Error::VerificationFailedExpired(_) => PowError::Expired,
                _ => PowError::Invalid,
            }
        })?;
        let hold = Duration::from_secs((expires - now).max(1) as u64);
        if !self.spent.claim_once("pow", &payload.signature, hold).await {
            return Err(PowError::Reused);
        }
        Ok(())
    }
}

/// The `expires` parameter every challenge of this edge carries in its salt.
fn expires_of(salt: &str) -> Option<i64> {
    let (_, params) = salt.split_once('?')?;
    url::form_urlencoded::parse(params.as_bytes())
        .find(|(k, _)| k == "expires")
        .and_then(|(_, v)| v.parse().ok())
}

/// Solves a challenge by brute force and encodes the payload as a widget would (tests, and
/// clients written in Rust).
pub fn solve(challenge: &Challenge) -> Option<String> {
    let number = altcha_lib_rs::solve_challenge(
        &challenge.challenge,
        &challenge.salt,
        Some(challenge.algorithm),
        Some(challenge.maxnumber),
        0,
    )
    .ok()?;
    let payload = Payload {
        algorithm: challenge.algorithm,
        challenge: challenge.challenge.clone(),
        number,
        salt: challenge.salt.clone(),
        signature: challenge.signature.clone(),
        took: None,
    };
    serde_json::to_vec(&payload)
        .ok()
        .map(|json| STANDARD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pow() -> ProofOfWork {
        ProofOfWork::new(
            SecretString::from("unit-test-key"),
            Duration::from_secs(60),
            Shared::local(),
        )
    }

    #[tokio::test]
    async fn a_solution_is_accepted_once() {
        let pow = pow();
        let solved = solve(&pow.challenge(2_000).unwrap()).unwrap();
        assert_eq!(pow.spend(Some(&solved)).await, Ok(()));
        assert_eq!(pow.spend(Some(&solved)).await, Err(PowError::Reused));
    }

    #[tokio::test]
    async fn missing_forged_and_foreign_solutions_are_refused() {
        let pow = pow();
        assert_eq!(pow.spend(None).await, Err(PowError::Missing));
        assert_eq!(pow.spend(Some("not base64!")).await, Err(PowError::Invalid));
        let other = ProofOfWork::new(
            SecretString::from("another-key"),
            Duration::from_secs(60),
            Shared::local(),
        );
        let foreign = solve(&other.challenge(2_000).unwrap()).unwrap();
        assert_eq!(pow.spend(Some(&foreign)).await, Err(PowError::Invalid));
    }

    #[tokio::test]
    async fn an_expired_challenge_is_refused() {
        let pow = ProofOfWork::new(
            SecretString::from("unit-test-key"),
            Duration::from_secs(0),
            Shared::local(),
        );
        let mut challenge = pow.challenge(2_000).unwrap();
        // Re-sign a challenge whose expiry is in the past, as the crate would.
        challenge = altcha_lib_rs::create_challenge(ChallengeOptions {
            hmac_key: "unit-test-key",
            max_number: Some(2_000),
            expires: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(5)),
            ..ChallengeOptions::default()
        })
        .unwrap_or(challenge);
        let solved = solve(&challenge).unwrap();
        assert_eq!(pow.spend(Some(&solved)).await, Err(PowError::Expired));
    }
}
