//! The HTTP API: `/api/*`, `/livez`, `/readyz`, `/metrics`.
//!
//! Who may call what (also in the README's API table and in
//! `docs/architecture.md`):
//!
//! - **Public** — the dashboard page `/` (it holds no data; its requests follow these
//!   rules), `/livez`, `/readyz`, `/api/health`, `/api/crypto/status`,
//!   `/api/openapi.json`, `/metrics`: what orchestrators, load balancers and
//!   scrapers need without a secret. They carry statuses, counters, public
//!   key sizes and the node id (which every peer learns anyway), never who
//!   this node talks to or what it received.
//! - **Private reads** — `/api/peers`, `/api/messages` (GET), `/api/system`
//!   and the `/api/dht/*` reads: the token in production. They show peers'
//!   addresses, received messages and host details, and a lookup or record
//!   fetch makes the node do network work. In development they stay open on
//!   the (loopback by default) API address.
//!   `GET /api/docs/*` (documents' content) and `GET /api/ai/search` are private reads
//!   too.
//! - **Changes** — `POST /api/messages`, `POST /api/dht/records`, and every
//!   change to documents, their access and capability tokens: the token, in every mode.
//!
//! Every request, whatever its route, first passes the `Host` check
//! (`host.rs`), which keeps web pages out through DNS rebinding.

mod ai;
mod auth;
mod crypto;
mod dashboard;
mod dht;
mod docs;
pub(crate) mod dto;
use crate::http_error as error;
pub(crate) use crate::http_error::{ApiError, ApiJson};
mod health;
pub(crate) mod host;
mod openapi;
mod p2p;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Router, middleware};
use tower_http::timeout::TimeoutLayer;

use crate::state::NodeShared;
use openapi::Access;

#[derive(Clone)]
pub(crate) struct ApiState {
    pub node: Arc<NodeShared>,
    pub hosts: Arc<host::HostPolicy>,
}

/// Largest request body the API accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body `POST /api/ai/index` accepts: the index's text cap and the JSON around it.
const MAX_INDEX_BODY_BYTES: usize = pqnode_search::MAX_TEXT_BYTES + 64 * 1024;
/// Largest Yjs update `POST /api/docs/{doc}/updates` accepts (the engine's own cap).
const MAX_UPDATE_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where [`declare`] puts the routes: the router, or (in tests) a list to compare with the
/// OpenAPI document.
trait Routes {
    fn add_limited<H, T>(
        &mut self,
        access: Access,
        method: Method,
        path: &'static str,
        body_limit: Option<usize>,
        handler: H,
    ) where
        H: Handler<T, ApiState>,
        T: 'static;

    fn add<H, T>(&mut self, access: Access, method: Method, path: &'static str, handler: H)
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add_limited(access, method, path, None, handler);
    }
}

/// Every route, with who may call it (see the module documentation for why).
fn declare(r: &mut impl Routes) {
    use Access::{Private, Public, Token};
    use Method as M;
    r.add(Public, M::GET, "/", dashboard::page);
    r.add(Public, M::GET, "/livez", health::livez);
    r.add(Public, M::GET, "/readyz", health::readyz);
    r.add(Public, M::GET, "/metrics", system::metrics);
    r.add(Public, M::GET, "/api/health", health::health);
    r.add(Public, M::GET, "/api/crypto/status", crypto::status);
    r.add(Public, M::GET, "/api/openapi.json", openapi::document);
    r.add(Private, M::GET, "/api/system", system::system);
    r.add(Private, M::GET, "/api/peers", p2p::peers);
    r.add(Private, M::GET, "/api/messages", p2p::list_messages);
    r.add(Token, M::POST, "/api/messages", p2p::send_message);
    r.add(Private, M::GET, "/api/dht/nodes", dht::nodes);
    r.add(Private, M::GET, "/api/dht/buckets", dht::buckets);
    r.add(Token, M::POST, "/api/dht/contacts", dht::add_contact);
    r.add(
        Token,
        M::DELETE,
        "/api/dht/contacts/{id}",
        dht::remove_contact,
    );
    r.add(Private, M::GET, "/api/dht/lookup/{id}", dht::lookup);
    r.add(Token, M::POST, "/api/dht/records", dht::publish_record);
    r.add(Private, M::GET, "/api/dht/records/{key}", dht::get_record);
    r.add(Private, M::GET, "/api/ai/search", ai::search);
    let index_limit = Some(MAX_INDEX_BODY_BYTES);
    r.add_limited(Token, M::POST, "/api/ai/index", index_limit, ai::index_text);
    r.add(Token, M::DELETE, "/api/ai/index/{id}", ai::remove_text);
    r.add(Private, M::GET, "/api/docs", docs::list);
    r.add(Private, M::GET, "/api/changes", docs::changes);
    r.add(Private, M::GET, "/api/docs/{doc}", docs::get);
    r.add(Token, M::DELETE, "/api/docs/{doc}", docs::delete);
    r.add(Private, M::GET, "/api/docs/{doc}/text", docs::text);
    r.add(Private, M::GET, "/api/docs/{doc}/history", docs::history);
    r.add(
        Private,
        M::GET,
        "/api/docs/{doc}/versions/{version}",
        docs::version,
    );
    let update_limit = Some(MAX_UPDATE_BODY_BYTES);
    r.add_limited(
        Token,
        M::POST,
        "/api/docs/{doc}/updates",
        update_limit,
        docs::apply,
    );
    r.add(Token, M::PUT, "/api/docs/{doc}/access", docs::set_access);
    r.add(Token, M::POST, "/api/docs/{doc}/tokens", docs::issue_token);
    r.add(Token, M::DELETE, "/api/capabilities/{id}", docs::revoke);
}

/// The routes as an axum router, each behind the check its access needs.
struct Build {
    router: Router<ApiState>,
    state: ApiState,
}

impl Routes for Build {
    fn add_limited<H, T>(
        &mut self,
        access: Access,
        method: Method,
        path: &'static str,
        body_limit: Option<usize>,
        handler: H,
    ) where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method).expect("a method axum routes");
        let route: MethodRouter<ApiState> = on(filter, handler);
        let state = self.state.clone();
        let route = match access {
            Access::Public => route,
            Access::Private => route.route_layer(middleware::from_fn_with_state(
                state,
                auth::require_token_in_production,
            )),
            Access::Token => {
                route.route_layer(middleware::from_fn_with_state(state, auth::require_token))
            }
        };
        let route = match body_limit {
            Some(bytes) => route.layer(axum::extract::DefaultBodyLimit::max(bytes)),
            None => route,
        };
        // Two methods on one path merge into one route.
        self.router = std::mem::take(&mut self.router).route(path, route);
    }
}

pub(crate) fn router(node: Arc<NodeShared>) -> Router {
    let hosts = Arc::new(host::HostPolicy::new(&node.config.api));
    let state = ApiState { node, hosts };
    let mut routes = Build {
        router: Router::new(),
        state: state.clone(),
    };
    declare(&mut routes);
    routes
        .router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Before routing, so unknown paths do not answer foreign hosts either.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        // Outermost, so rejections and the timeout above become JSON errors too.
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi;

    use super::*;

    /// Records what [`declare`] routes, without building a router.
    #[derive(Default)]
    struct Table(BTreeSet<(String, String, Access)>);

    impl Routes for Table {
        fn add_limited<H, T>(
            &mut self,
            access: Access,
            method: Method,
            path: &'static str,
            _: Option<usize>,
            _: H,
        ) where
            H: Handler<T, ApiState>,
            T: 'static,
        {
            let new = self.0.insert((path.to_owned(), method.to_string(), access));
            assert!(new, "{method} {path} is routed twice");
        }
    }

    /// The OpenAPI document's operations, with the access their `security` declares.
    fn documented() -> BTreeSet<(String, String, Access)> {
        let doc = openapi::ApiDoc::openapi();
        let mut operations = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
            ];
            for (method, operation) in methods {
                if let Some(operation) = operation {
                    let access = openapi::access_of(operation);
                    operations.insert((path.clone(), method.to_owned(), access));
                }
            }
        }
        operations
    }

    /// Documentation cannot drift from the router: every route `declare` registers is an
    /// operation of `/api/openapi.json` with the same method and the same access (what its
    /// `security` says is what the router enforces), and the document has nothing else.
    #[test]
    fn every_route_is_documented_with_its_access_and_nothing_else() {
        let mut routed = Table::default();
        declare(&mut routed);
        let mut routed = routed.0;
        // The dashboard is a page for people, not part of the API the document describes.
        assert!(routed.remove(&("/".to_owned(), "GET".to_owned(), Access::Public)));
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routed but not documented (or with another access): {undocumented:?}\n\
             documented but not routed (or with another access): {unrouted:?}"
        );
    }

    /// `/api/crypto/status` sends the crypto component's own JSON; the schema the document
    /// gives for it ([`dto::CryptoStatus`]) must describe every field of it.
    #[test]
    fn the_crypto_status_is_what_the_document_says() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let crypto = crate::components::crypto::CryptoService::start(&config).unwrap();
        let status = crypto.status_json();
        let typed: dto::CryptoStatus =
            serde_json::from_value(status.clone()).unwrap_or_else(|e| panic!("{e}: {status:#}"));
        assert!(typed.initialized, "{status:#}");
    }

    /// Every error the API sends parses as the document's `Error` (what the CLI reads).
    #[tokio::test]
    async fn errors_are_the_documented_error_body() {
        use axum::response::IntoResponse;
        let response = ApiError::bad_request("BAD_ID", "no").into_response();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: dto::ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (body.error.code.as_str(), body.error.message.as_str()),
            ("BAD_ID", "no")
        );
    }

    /// Prints the document (`cargo test -p pqnode openapi_document -- --nocapture`), and
    /// checks the header every client reads first.
    #[test]
    fn openapi_document() {
        let doc: serde_json::Value = serde_json::to_value(openapi::ApiDoc::openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "pqnode HTTP API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        if std::env::var_os("PQNODE_PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap());
        }
    }
}
