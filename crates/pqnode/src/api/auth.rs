//! Bearer-token checks: always for methods that change state, and in
//! production also for reads that reveal private data or make the node work.
//!
//! Which route is which is decided in `api/mod.rs` (and documented in the
//! README's API table); this module only checks the header. The comparison
//! itself is `token::matches`, constant-time in content and length.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};
use crate::config::Mode;

/// Rejects requests without `Authorization: Bearer <api token>`.
pub(super) async fn require_token(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(e) => challenge(e),
    }
}

/// In production, [`require_token`]; in development, lets the request
/// through: a development node's reads stay open on its (loopback by
/// default) address, as they always were, and the `Host` check still keeps
/// web pages out.
pub(super) async fn require_token_in_production(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    if state.node.config.mode != Mode::Production {
        return next.run(request).await;
    }
    match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(e) => challenge(e),
    }
}

fn check(state: &ApiState, request: &Request) -> Result<(), ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match presented {
        Some(token) if crate::token::matches(token, &state.node.api_token) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "BAD_TOKEN",
            "the API token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REQUIRED",
            "this endpoint needs `Authorization: Bearer <token>` (the token is in <data_dir>/api.token)",
        )),
    }
}

/// The credentials of a `Bearer` authorization; the scheme name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// A 401 says which scheme would work (RFC 6750 §3).
fn challenge(e: ApiError) -> Response {
    let mut response = e.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }
}
