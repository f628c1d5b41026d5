//! `/api/openapi.json`: the API's OpenAPI 3.1 description, generated at start-up by
//! `utoipa` from the handlers' `#[utoipa::path]` annotations and the types in `dto.rs`.
//!
//! What every operation shares is added here rather than repeated on each: the `Host`
//! check's 421, the token's 401 on guarded routes, the note that private reads need the
//! token only in production, and `Retry-After` on 503 errors. A test checks that the routes
//! `api/mod.rs` registers and the operations documented here are the same set, with the
//! same access.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Object, OpenApi as Document, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use super::dto::ErrorBody;
use super::{ai, crypto, dht, docs, health, p2p, system};

const DESCRIPTION: &str = "The local HTTP API of a pqnode post-quantum peer-to-peer node. \
Public routes (liveness, readiness, health, crypto status, this document, /metrics) need \
nothing. Private reads (peers, messages, system, the DHT reads, documents, search, the change \
feed) need `Authorization: Bearer <token>` when the node runs in production mode, and are open \
in development. Endpoints that change state always need the token (it is in \
<data_dir>/api.token unless configured). Every request's Host header must be an IP address the \
API serves, localhost (or *.localhost), or a name in api.allowed_hosts; anything else is \
answered 421 HOST_NOT_ALLOWED, which keeps web pages out through DNS rebinding. Load is \
answered 503 with Retry-After, never 502. Every error is JSON: \
{\"error\": {\"code\": \"...\", \"message\": \"...\"}}.";

/// The description, as `utoipa` derives it.
#[derive(OpenApi)]
#[openapi(
    info(title = "pqnode HTTP API", description = DESCRIPTION),
    paths(
        health::livez,
        health::readyz,
        system::metrics,
        health::health,
        crypto::status,
        document,
        system::system,
        p2p::peers,
        p2p::list_messages,
        p2p::send_message,
        dht::nodes,
        dht::buckets,
        dht::lookup,
        dht::get_record,
        dht::publish_record,
        dht::add_contact,
        dht::remove_contact,
        docs::list,
        docs::changes,
        docs::get,
        docs::delete,
        docs::text,
        docs::history,
        docs::version,
        docs::apply,
        docs::set_access,
        docs::issue_token,
        docs::revoke,
        ai::search,
        ai::index_text,
        ai::remove_text,
    ),
    components(schemas(
        ErrorBody,
        super::dto::DocUpdated,
        super::dto::DocRemoved,
        super::dto::Lagged
    )),
    modifiers(&Shared),
    tags(
        (name = "health", description = "liveness, readiness, component health"),
        (name = "system", description = "Prometheus metrics and the system monitor"),
        (name = "crypto", description = "the node's post-quantum keys"),
        (name = "openapi", description = "this document"),
        (name = "p2p", description = "connections and direct messages"),
        (name = "dht", description = "the routing table, lookups, signed records"),
        (name = "docs", description = "CRDT documents, their access and capability tokens"),
        (name = "ai", description = "search over the node's text"),
    )
)]
pub(super) struct ApiDoc;

/// Built once, on first request.
static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
});

/// This document
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "the OpenAPI 3.1 description", content_type = "application/json"))
)]
pub(super) async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON.as_str(),
    )
}

const PRIVATE_NOTE: &str = "Private: needs the token in production mode (open in development).";

/// Adds what every operation shares (see the module documentation).
struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build()
        };
        components.responses.insert(
            "HostNotAllowed".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "HOST_NOT_ALLOWED: the Host header is not an address this API serves, \
                         localhost, or a name in api.allowed_hosts",
                    )
                    .content("application/json", error())
                    .build(),
            ),
        );
        components.responses.insert(
            "TokenRequired".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "TOKEN_REQUIRED or BAD_TOKEN: this route needs `Authorization: Bearer \
                         <token>` (in production for reads)",
                    )
                    .header(
                        "WWW-Authenticate",
                        HeaderBuilder::new().description(Some("`Bearer`")).build(),
                    )
                    .content("application/json", error())
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                share(operation);
            }
        }
    }
}

fn share(operation: &mut Operation) {
    let access = access_of(operation);
    let responses = &mut operation.responses.responses;
    responses.insert(
        "421".into(),
        RefOr::Ref(Ref::from_response_name("HostNotAllowed")),
    );
    if access != Access::Public {
        responses.insert(
            "401".into(),
            RefOr::Ref(Ref::from_response_name("TokenRequired")),
        );
    }
    // A 503 error may be load: then it says when to come back.
    if let Some(RefOr::T(unavailable)) = responses.get_mut("503")
        && unavailable
            .content
            .get("application/json")
            .and_then(|c| c.schema.as_ref())
            .is_some_and(|s| matches!(s, RefOr::Ref(r) if r.ref_location.ends_with("/Error")))
    {
        unavailable.headers.insert(
            "Retry-After".into(),
            HeaderBuilder::new()
                .schema(Object::with_type(Type::Integer))
                .description(Some(
                    "seconds to wait before retrying, when the cause is load or a store that \
                     recovers",
                ))
                .build(),
        );
    }
    if access == Access::Private {
        operation.description = Some(match operation.description.take() {
            Some(text) => format!("{text}\n\n{PRIVATE_NOTE}"),
            None => PRIVATE_NOTE.to_owned(),
        });
    }
}

/// Who may call a route: what `api/mod.rs` enforces and the operation's `security` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Access {
    /// Nothing needed.
    Public,
    /// The token in production; open in development.
    Private,
    /// The token, in every mode.
    Token,
}

/// Read from the operation's `security`: none is public, "none or bearer" private, bearer
/// alone needs the token.
pub(super) fn access_of(operation: &Operation) -> Access {
    let Some(requirements) = &operation.security else {
        return Access::Public;
    };
    let json = serde_json::to_value(requirements).unwrap_or_default();
    let optional = json.as_array().is_some_and(|r| {
        r.iter()
            .any(|req| req.as_object().is_some_and(|o| o.is_empty()))
    });
    match (requirements.is_empty(), optional) {
        (true, _) => Access::Public,
        (false, true) => Access::Private,
        (false, false) => Access::Token,
    }
}
