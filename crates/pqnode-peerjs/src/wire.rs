//! The PeerJS wire format: JSON text frames, as npm `peer@1.0.2` reads and
//! writes them.
//!
//! Payloads are relayed byte for byte as [`RawValue`]s: the server never
//! interprets SDP or candidates, it only stamps `src`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Error texts of the reference server, which clients show to people.
pub(crate) mod error_text {
    pub(crate) const INVALID_KEY: &str = "Invalid key provided";
    pub(crate) const INVALID_WS_PARAMETERS: &str =
        "No id, token, or key supplied to websocket server";
    pub(crate) const CONNECTION_LIMIT_EXCEED: &str = "Server has reached its concurrent user limit";
    /// Ours: the reference accepts ids of any length.
    pub(crate) const ID_TOO_LONG: &str = "Id or token is too long";
    /// Ours: the reference has no rate limit.
    pub(crate) const RATE_LIMITED: &str = "Rate limit exceeded";
}

/// Message types the server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Offer,
    Answer,
    Candidate,
    Leave,
    Expire,
    Heartbeat,
}

impl Kind {
    /// `None` for types the reference ignores (including OPEN, ERROR, ID-TAKEN
    /// sent by a client).
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OFFER" => Self::Offer,
            "ANSWER" => Self::Answer,
            "CANDIDATE" => Self::Candidate,
            "LEAVE" => Self::Leave,
            "EXPIRE" => Self::Expire,
            "HEARTBEAT" => Self::Heartbeat,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "OFFER",
            Self::Answer => "ANSWER",
            Self::Candidate => "CANDIDATE",
            Self::Leave => "LEAVE",
            Self::Expire => "EXPIRE",
            Self::Heartbeat => "HEARTBEAT",
        }
    }

    /// Messages the reference keeps for a peer that is not connected yet.
    pub(crate) fn is_queued_when_absent(self) -> bool {
        !matches!(self, Self::Leave | Self::Expire)
    }
}

/// One message from a client, borrowed from the frame it came in.
#[derive(Debug)]
pub(crate) struct Inbound<'a> {
    pub kind: Kind,
    pub dst: Option<Cow<'a, str>>,
    pub payload: Option<&'a RawValue>,
}

/// Why a frame was not turned into an [`Inbound`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// Not JSON, not an object, or fields of the wrong type.
    Malformed,
    /// Well-formed, but a type the server does not act on.
    UnknownType,
}

#[derive(Deserialize)]
struct RawInbound<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dst: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

impl<'a> Inbound<'a> {
    /// Parses a client frame; never panics, whatever the input.
    pub(crate) fn parse(text: &'a str) -> Result<Self, Ignored> {
        let raw: RawInbound<'a> = serde_json::from_str(text).map_err(|_| Ignored::Malformed)?;
        let kind = raw
            .kind
            .as_deref()
            .and_then(Kind::parse)
            .ok_or(Ignored::UnknownType)?;
        Ok(Self {
            kind,
            dst: raw.dst,
            payload: raw.payload,
        })
    }
}

/// A message from the server, in the reference's field order.
#[derive(Serialize)]
pub(crate) struct Outbound<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a RawValue>,
}

impl Outbound<'_> {
    pub(crate) fn to_json(&self) -> String {
        // Serializing borrowed strings and already-valid raw JSON cannot fail;
        // an empty object keeps the function total anyway.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// `{"type":"OPEN"}`, sent once to a newly registered client.
pub(crate) fn open() -> String {
    String::from(r#"{"type":"OPEN"}"#)
}

/// `{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}`.
pub(crate) fn id_taken() -> String {
    String::from(r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#)
}

/// `{"type":"ERROR","payload":{"msg":...}}`.
pub(crate) fn error(msg: &str) -> String {
    serde_json::json!({ "type": "ERROR", "payload": { "msg": msg } }).to_string()
}

/// The query of the WebSocket URL: `?key=&id=&token=&version=`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectParams {
    pub key: Option<String>,
    pub id: Option<String>,
    pub token: Option<String>,
}

impl ConnectParams {
    /// Parses a query string like `URLSearchParams` does: lossy decoding, the
    /// last of repeated names wins, empty values count as missing.
    pub(crate) fn from_query(query: &str) -> Self {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "key" => &mut params.key,
                "id" => &mut params.id,
                "token" => &mut params.token,
                _ => continue,
            };
            *slot = (!value.is_empty()).then(|| value.into_owned());
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_relayed_offer() {
        let msg =
            Inbound::parse(r#"{"type":"OFFER","dst":"bob","payload":{"sdp":{"type":"offer"}}}"#)
                .unwrap();
        assert_eq!(msg.kind, Kind::Offer);
        assert_eq!(msg.dst.as_deref(), Some("bob"));
        assert_eq!(msg.payload.unwrap().get(), r#"{"sdp":{"type":"offer"}}"#);
    }

    #[test]
    fn ignores_what_the_reference_ignores() {
        assert_eq!(Inbound::parse("not json").unwrap_err(), Ignored::Malformed);
        assert_eq!(Inbound::parse("[1,2]").unwrap_err(), Ignored::Malformed);
        assert_eq!(
            Inbound::parse(r#"{"dst":5}"#).unwrap_err(),
            Ignored::Malformed
        );
        assert_eq!(
            Inbound::parse(r#"{"type":"OPEN"}"#).unwrap_err(),
            Ignored::UnknownType
        );
        assert_eq!(Inbound::parse("{}").unwrap_err(), Ignored::UnknownType);
    }

    #[test]
    fn stamps_src_in_reference_field_order() {
        let payload = RawValue::from_string(r#"{"a":1}"#.to_owned()).unwrap();
        let out = Outbound {
            kind: "ANSWER",
            src: Some("alice"),
            dst: Some("bob"),
            payload: Some(&payload),
        };
        assert_eq!(
            out.to_json(),
            r#"{"type":"ANSWER","src":"alice","dst":"bob","payload":{"a":1}}"#
        );
    }

    #[test]
    fn query_parsing_matches_url_search_params() {
        let p = ConnectParams::from_query("key=peerjs&id=a%20b&token=&version=1.5.5&id=c");
        assert_eq!(p.key.as_deref(), Some("peerjs"));
        assert_eq!(p.id.as_deref(), Some("c"));
        assert_eq!(p.token, None);
    }

    #[test]
    fn error_frames_escape_their_text() {
        let v: serde_json::Value = serde_json::from_str(&error("a \"b\"")).unwrap();
        assert_eq!(v["payload"]["msg"], "a \"b\"");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,512}") {
            let _ = Inbound::parse(&text);
            let _ = ConnectParams::from_query(&text);
        }

        #[test]
        fn relayed_frames_are_valid_json_whatever_the_ids(
            src in ".{0,64}",
            dst in ".{0,64}",
            n in proptest::num::i64::ANY,
        ) {
            let payload = RawValue::from_string(format!(r#"{{"n":{n}}}"#)).unwrap();
            let frame = Outbound { kind: "OFFER", src: Some(&src), dst: Some(&dst), payload: Some(&payload) }
                .to_json();
            let back: serde_json::Value = serde_json::from_str(&frame).unwrap();
            proptest::prop_assert_eq!(back["src"].as_str(), Some(src.as_str()));
            proptest::prop_assert_eq!(back["dst"].as_str(), Some(dst.as_str()));
            proptest::prop_assert_eq!(back["payload"]["n"].as_i64(), Some(n));
        }
    }
}
