//! Authentication and authorization: OIDC sign-in, the typed session, the policy, the
//! extractors that enforce it, and CSRF protection.

pub mod csrf;
pub mod extract;
pub mod oidc;
pub mod policy;
pub mod principal;
pub mod session;
pub mod tokens;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// `bytes` random bytes, base64url without padding.
pub fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A post-sign-in destination that can only ever be a path on this portal.
///
/// Anything that is not a plain absolute path (a scheme, `//host`, a backslash, control
/// characters, a path that leaves the site when resolved) falls back to `/`.
pub fn safe_return_to(candidate: Option<&str>) -> String {
    let Some(path) = candidate.map(str::trim) else {
        return "/".to_string();
    };
    let plain = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        && !path.starts_with("/auth/");
    if !plain {
        return "/".to_string();
    }
    // Resolve against a placeholder origin; it must stay on that origin.
    let Ok(base) = url::Url::parse("http://portal.invalid/") else {
        return "/".to_string();
    };
    match base.join(path) {
        Ok(url) if url.origin() == base.origin() => {
            let mut out = url.path().to_string();
            if let Some(q) = url.query() {
                out.push('?');
                out.push_str(q);
            }
            // Check what is returned, not only what came in: dot-segments can turn
            // `/..//evil.example` into the scheme-relative `//evil.example`.
            if out.starts_with("//") || out.contains('\\') || !out.starts_with('/') {
                "/".to_string()
            } else {
                out
            }
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_only_same_origin_paths() {
        assert_eq!(safe_return_to(Some("/me")), "/me");
        assert_eq!(
            safe_return_to(Some("/users?q=ada&status=ACTIVE")),
            "/users?q=ada&status=ACTIVE"
        );
        for evil in [
            "https://evil.example/",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/%0d%0aSet-Cookie:x",
            "http:/evil.example",
            "/\tevil",
            "evil.example",
            "",
            "/auth/login",
            "/..//evil.example/x",
            "/%2e%2e//evil.example",
            "/a/..//evil.example",
            "/.%2e//evil.example",
            "/./\\evil.example",
        ] {
            let out = safe_return_to(Some(evil));
            assert!(
                out == "/" || (out.starts_with('/') && !out.starts_with("//")),
                "{evil} -> {out}"
            );
            assert!(
                !out.contains("evil.example") || out.starts_with("/%"),
                "{evil} -> {out}"
            );
        }
        assert_eq!(safe_return_to(Some("https://evil.example/")), "/");
        assert_eq!(safe_return_to(Some("//evil.example/path")), "/");
        for dotted in [
            "/..//evil.example/x",
            "/%2e%2e//evil.example",
            "/a/..//evil.example",
            "/.%2e//evil.example",
        ] {
            assert_eq!(safe_return_to(Some(dotted)), "/", "{dotted}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_urlsafe(32), random_urlsafe(32));
        assert_eq!(random_urlsafe(32).len(), 43);
    }
}
