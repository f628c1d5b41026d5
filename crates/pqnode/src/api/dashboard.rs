//! `GET /` on the API port: the dashboard (`crates/pqnode/web/dashboard.html`).
//!
//! One self-contained page (inline CSS and JS, no fonts or scripts from
//! elsewhere) compiled into the binary. It holds no data of its own, so the
//! route is public: the page reads the API from the browser like any other
//! client, and in production asks for the token before it calls a private
//! read (kept in the tab's `sessionStorage`, sent as `Authorization: Bearer`).
//! The `Host` check in front of every API route still applies, so a page on
//! another site cannot load it through DNS rebinding either.

use axum::http::header;
use axum::response::IntoResponse;

/// Kept inside the crate so `cargo package` includes it.
const DASHBOARD_HTML: &str = include_str!("../../web/dashboard.html");

/// Only inline script and style, requests only to this origin, no other
/// resource of any kind (the favicon is an inline `data:` image), not
/// frameable, no forms posting elsewhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // The page is in the binary; a stale copy after an upgrade would
            // talk to an API it was not written for.
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        DASHBOARD_HTML,
    )
}

#[cfg(test)]
mod tests {
    use super::DASHBOARD_HTML;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        assert!(DASHBOARD_HTML.starts_with("<!doctype html>"));
        for needle in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
            "url(",
            "<script src",
        ] {
            assert!(
                !DASHBOARD_HTML.contains(needle),
                "dashboard.html must stay self-contained: found {needle:?}"
            );
        }
    }
}
