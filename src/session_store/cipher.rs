//! What a session row holds, sealed: XChaCha20-Poly1305 with a random 192-bit nonce, the
//! row's id hash as associated data (a ciphertext moved to another row does not open), and
//! the key from `session.encryption_key`. Earlier keys open old rows (rotation).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tower_sessions::session::Id;

/// The first byte of every sealed value: the format.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// One 256-bit key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SessionKey(Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Decodes a base64 key (standard or URL-safe alphabet, padded or not) of 32 bytes. The
    /// error never repeats the key.
    pub fn parse(text: &SecretString) -> Result<SessionKey, String> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let text = text.expose_secret().trim();
        let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| "is not valid base64".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        Ok(SessionKey(*Key::from_slice(&bytes)))
    }

    /// A fresh random key (the demo's), as base64.
    pub fn generate_base64() -> SecretString {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// The current key seals; every key opens.
#[derive(Clone, Debug)]
pub struct SessionCipher {
    current: SessionKey,
    old: Vec<SessionKey>,
}

/// A sealed value that no key opens: tampered, truncated, or written with a retired key.
#[derive(Debug, thiserror::Error)]
#[error("the session data could not be decrypted")]
pub struct Unreadable;

impl SessionCipher {
    pub fn new(current: SessionKey, old: Vec<SessionKey>) -> SessionCipher {
        SessionCipher { current, old }
    }

    /// `VERSION ‖ nonce ‖ ciphertext+tag`, bound to `id_hash`.
    pub fn seal(&self, id_hash: &str, plaintext: &[u8]) -> Result<Vec<u8>, Unreadable> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = XChaCha20Poly1305::new(&self.current.0)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: id_hash.as_bytes(),
                },
            )
            .map_err(|_| Unreadable)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, id_hash: &str, sealed: &[u8]) -> Result<Vec<u8>, Unreadable> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(Unreadable);
        };
        if rest.len() < NONCE_LEN {
            return Err(Unreadable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        std::iter::once(&self.current)
            .chain(&self.old)
            .find_map(|key| {
                XChaCha20Poly1305::new(&key.0)
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: id_hash.as_bytes(),
                        },
                    )
                    .ok()
            })
            .ok_or(Unreadable)
    }
}

/// The row key for a session id: hex SHA-256 of the cookie's value. The table never holds
/// the value itself, so a copy of it signs nobody in.
pub fn hash_id(id: &Id) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        SessionKey::parse(&SecretString::from(text)).unwrap()
    }

    #[test]
    fn sealed_data_opens_only_with_its_row_and_a_known_key() {
        let cipher = SessionCipher::new(key(1), vec![]);
        let sealed = cipher.seal("row-a", b"refresh-token-value").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("refresh-token-value"));
        assert_eq!(
            cipher.open("row-a", &sealed).unwrap(),
            b"refresh-token-value"
        );
        assert!(cipher.open("row-b", &sealed).is_err(), "bound to its row");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(cipher.open("row-a", &tampered).is_err());
        assert!(cipher.open("row-a", &sealed[..10]).is_err());
        assert!(cipher.open("row-a", &[]).is_err());
        assert!(
            SessionCipher::new(key(2), vec![])
                .open("row-a", &sealed)
                .is_err()
        );
    }

    #[test]
    fn a_rotated_key_still_opens_old_rows_and_new_rows_use_the_new_key() {
        let old = SessionCipher::new(key(1), vec![]);
        let sealed_old = old.seal("row", b"data").unwrap();
        let rotated = SessionCipher::new(key(2), vec![key(1)]);
        assert_eq!(rotated.open("row", &sealed_old).unwrap(), b"data");
        let sealed_new = rotated.seal("row", b"data").unwrap();
        assert!(old.open("row", &sealed_new).is_err());
        assert_ne!(
            rotated.seal("row", b"data").unwrap(),
            sealed_new,
            "fresh nonce"
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_errors_do_not_repeat_them() {
        let short = SecretString::from("c2hvcnQta2V5".to_string());
        let err = SessionKey::parse(&short).unwrap_err();
        assert_eq!(err, "must decode to 32 bytes, not 9");
        let junk = SecretString::from("not base64 at all!".to_string());
        assert_eq!(SessionKey::parse(&junk).unwrap_err(), "is not valid base64");
        assert!(SessionKey::parse(&SessionKey::generate_base64()).is_ok());
        assert_eq!(format!("{:?}", key(7)), "SessionKey(..)");
    }

    #[test]
    fn the_row_key_is_the_sha256_of_the_cookie_value() {
        let id = Id(42);
        let expected: String = Sha256::digest(id.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash_id(&id), expected);
        assert_eq!(hash_id(&id).len(), 64);
        assert!(!hash_id(&id).contains(&id.to_string()));
    }
}
