//! The `Host` check that keeps web pages from reading the API through DNS
//! rebinding.
//!
//! What it is for: a page on `evil.example` can have `evil.example` resolve
//! to 127.0.0.1 a moment after it loaded, and then read
//! `http://evil.example:3000/api/...` as if it were its own origin. Such a
//! request still says `Host: evil.example:3000`. The API therefore answers
//! only requests whose `Host` is an IP address it serves, a localhost name
//! (`localhost`, `*.localhost`: browsers never let DNS answer for those), or
//! a name listed in `api.allowed_hosts` — and refuses the rest with 421.
//!
//! What it is not: authentication. Any program that is not a browser can
//! send whatever `Host` it likes; the token protects against those. The port
//! in `Host` is not compared (a reverse proxy may forward another one), and
//! a request with no `Host` at all (HTTP/1.0 tools) is let through: browsers
//! always send one.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{ApiError, ApiState};
use crate::config::ApiConfig;

/// The hosts this API answers to.
#[derive(Debug, Clone)]
pub(crate) struct HostPolicy {
    /// The address the API is bound to; unspecified (`0.0.0.0`, `::`) means
    /// every address of the machine, so any IP literal is one it serves.
    bind: IpAddr,
    /// Lowercase, without a trailing dot.
    allowed: Vec<String>,
}

impl HostPolicy {
    pub(crate) fn new(api: &ApiConfig) -> Self {
        Self {
            bind: api.addr.ip().to_canonical(),
            allowed: api.allowed_hosts.iter().map(|h| normalize(h)).collect(),
        }
    }

    /// Whether a request with this `Host` value (`name[:port]`,
    /// `ip[:port]` or `[ipv6][:port]`) may be answered.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let Some(host) = host_part(authority) else {
            return false;
        };
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return self.bind.is_unspecified()
                || ip == self.bind
                || (ip.is_loopback() && self.bind.is_loopback());
        }
        let name = normalize(host);
        name == "localhost" || name.ends_with(".localhost") || self.allowed.contains(&name)
    }
}

/// `authority` without its port; `None` if it is not a well-formed
/// authority (an unbracketed IPv6 address, a port that is not a number).
fn host_part(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        (host, rest.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (!host.is_empty() && port_ok).then_some(host)
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Longest piece of a refused `Host` echoed back in the error.
const ECHO_MAX: usize = 64;

/// Middleware: answers 421 `HOST_NOT_ALLOWED` to a request whose `Host`
/// (or HTTP/2 `:authority`) the policy does not allow.
pub(crate) async fn check_host(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let authority = match request.headers().get(header::HOST) {
        // A Host header that is not even visible ASCII is refused as unknown.
        Some(value) => Some(value.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    };
    match authority {
        Some(host) if !state.hosts.allows(host) => {
            let shown: String = host.chars().take(ECHO_MAX).collect();
            Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "HOST_NOT_ALLOWED",
                format!(
                    "this API does not answer to host {shown:?}: use an address it serves or \
                     localhost, or add the name to api.allowed_hosts"
                ),
            ))
        }
        _ => Ok(next.run(request).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(addr: &str, allowed: &[&str]) -> HostPolicy {
        HostPolicy::new(&ApiConfig {
            addr: addr.parse().unwrap(),
            allowed_hosts: allowed.iter().map(|h| (*h).to_owned()).collect(),
            ..ApiConfig::default()
        })
    }

    #[test]
    fn loopback_api_answers_loopback_literals_and_localhost_names() {
        let p = policy("127.0.0.1:3000", &[]);
        for ok in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "[::1]:3000",
            "localhost:3000",
            "LOCALHOST",
            "localhost.",
            "app.localhost:8080",
        ] {
            assert!(p.allows(ok), "{ok} refused");
        }
        for refused in [
            "evil.example:3000",
            "localhost.evil.example",
            "10.0.0.1:3000",
            "",
            ":3000",
            "127.0.0.1:x",
            "::1",
            "[::1",
        ] {
            assert!(!p.allows(refused), "{refused} allowed");
        }
    }

    #[test]
    fn an_api_on_every_address_answers_any_ip_and_listed_names() {
        let p = policy("0.0.0.0:3000", &["Node.Example.org."]);
        assert!(p.allows("192.0.2.7:3000"));
        assert!(p.allows("[2001:db8::1]:3000"));
        assert!(p.allows("node.example.org"));
        assert!(p.allows("NODE.example.org:443"));
        assert!(!p.allows("other.example.org"));
        assert!(!p.allows("example.org"));
    }

    #[test]
    fn a_specific_address_is_the_only_literal_served() {
        let p = policy("192.0.2.7:3000", &[]);
        assert!(p.allows("192.0.2.7:3000"));
        assert!(!p.allows("192.0.2.8:3000"));
        assert!(!p.allows("127.0.0.1:3000"));
    }

    #[test]
    fn allow_list_entries_are_bare_names() {
        assert!(crate::config::check_allowed_host("node.example.org").is_ok());
        for bad in ["", "http://x", "x:1", "x/y", "a b", "*.example.org"] {
            assert!(crate::config::check_allowed_host(bad).is_err(), "{bad:?}");
        }
    }
}
