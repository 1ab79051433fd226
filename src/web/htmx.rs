//! Page or fragment: the same URL answers both, by `HX-Request` (with `Vary: HX-Request`).

use axum::http::HeaderMap;

/// True for an htmx request that wants a fragment. History restoration (after the back
/// button with an empty history cache) needs the full page.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_restore_gets_the_page() {
        let mut h = HeaderMap::new();
        assert!(!wants_fragment(&h));
        h.insert("hx-request", "true".parse().unwrap());
        assert!(wants_fragment(&h));
        h.insert("hx-history-restore-request", "true".parse().unwrap());
        assert!(!wants_fragment(&h));
    }
}
