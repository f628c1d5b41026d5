//! Decoding client requests: lenient head, strict body, never a panic.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{ErrorCode, RelayKind, RequestId, Topic};
use crate::config::{MAX_REQUEST_ID_LEN, MAX_SID_LEN};
use pqnode_crypto::{Algorithm, PeerId};

/// A decoded client request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub id: Option<RequestId>,
    pub body: Inbound<'a>,
}

#[derive(Debug)]
pub(crate) enum Inbound<'a> {
    Register(RegisterRequest),
    Ping,
    /// Requests that need a registered session.
    Peer(PeerRequest<'a>),
}

#[derive(Debug)]
pub(crate) enum PeerRequest<'a> {
    Relay(RelayRequest<'a>),
    Join(Topic),
    Leave(Topic),
    Discover(Topic),
    Lookup(PeerId),
}

#[derive(Debug)]
pub(crate) struct RegisterRequest {
    pub algorithm: Algorithm,
    pub public_key: Vec<u8>,
    pub peer_id: PeerId,
    pub nonce: String,
    pub ts: u64,
    pub signature: Vec<u8>,
    pub topics: Vec<Topic>,
    pub takeover: bool,
}

#[derive(Debug)]
pub(crate) struct RelayRequest<'a> {
    pub kind: RelayKind,
    pub to: PeerId,
    pub sid: Option<String>,
    pub data: &'a RawValue,
}

/// A request the server refuses before acting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    pub id: Option<RequestId>,
}

impl Rejection {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>, id: Option<RequestId>) -> Self {
        Self {
            code,
            message: message.into(),
            id,
        }
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterWire<'a> {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(rename = "id", default)]
    _id: IgnoredAny,
    algorithm: Algorithm,
    public_key: &'a str,
    peer_id: PeerId,
    nonce: &'a str,
    ts: u64,
    signature: &'a str,
    #[serde(default)]
    topics: Vec<Topic>,
    #[serde(default)]
    takeover: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayWire<'a> {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(rename = "id", default)]
    _id: IgnoredAny,
    to: PeerId,
    #[serde(default)]
    sid: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicWire {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(rename = "id", default)]
    _id: IgnoredAny,
    topic: Topic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupWire {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(rename = "id", default)]
    _id: IgnoredAny,
    peer_id: PeerId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PingWire {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(rename = "id", default)]
    _id: IgnoredAny,
}

/// Decodes one text frame. Never panics; every failure is a [`Rejection`].
pub(crate) fn parse(text: &str) -> Result<Request<'_>, Rejection> {
    let head: Head<'_> = serde_json::from_str(text).map_err(|_| {
        Rejection::new(
            ErrorCode::BadJson,
            "expected one JSON object with a string \"type\"",
            None,
        )
    })?;
    let id = match head.id {
        None => None,
        Some(raw) => Some(parse_request_id(raw)?),
    };
    let schema = |e: serde_json::Error| {
        Rejection::new(
            ErrorCode::Schema,
            format!("invalid {}: {e}", head.kind),
            id.clone(),
        )
    };
    let relay = |kind| -> Result<Inbound<'_>, Rejection> {
        let wire: RelayWire<'_> = serde_json::from_str(text).map_err(schema)?;
        if wire.sid.as_ref().is_some_and(|s| s.len() > MAX_SID_LEN) {
            return Err(Rejection::new(
                ErrorCode::Schema,
                format!("sid is longer than {MAX_SID_LEN} bytes"),
                id.clone(),
            ));
        }
        Ok(Inbound::Peer(PeerRequest::Relay(RelayRequest {
            kind,
            to: wire.to,
            sid: wire.sid,
            data: wire.data,
        })))
    };
    let body = match head.kind.as_str() {
        "register" => {
            let wire: RegisterWire<'_> = serde_json::from_str(text).map_err(schema)?;
            let bad_hex = |field: &str| {
                Rejection::new(ErrorCode::Schema, format!("{field} is not hex"), id.clone())
            };
            Inbound::Register(RegisterRequest {
                algorithm: wire.algorithm,
                public_key: hex::decode(wire.public_key).map_err(|_| bad_hex("public_key"))?,
                peer_id: wire.peer_id,
                nonce: wire.nonce.to_owned(),
                ts: wire.ts,
                signature: hex::decode(wire.signature).map_err(|_| bad_hex("signature"))?,
                topics: wire.topics,
                takeover: wire.takeover,
            })
        }
        "offer" => relay(RelayKind::Offer)?,
        "answer" => relay(RelayKind::Answer)?,
        "candidate" => relay(RelayKind::Candidate)?,
        "bye" => relay(RelayKind::Bye)?,
        "join" | "leave" | "discover" => {
            let topic = serde_json::from_str::<TopicWire>(text)
                .map_err(schema)?
                .topic;
            Inbound::Peer(match head.kind.as_str() {
                "join" => PeerRequest::Join(topic),
                "leave" => PeerRequest::Leave(topic),
                _ => PeerRequest::Discover(topic),
            })
        }
        "lookup" => {
            let wire: LookupWire = serde_json::from_str(text).map_err(schema)?;
            Inbound::Peer(PeerRequest::Lookup(wire.peer_id))
        }
        "ping" => {
            serde_json::from_str::<PingWire>(text).map_err(schema)?;
            Inbound::Ping
        }
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(Rejection::new(
                ErrorCode::UnknownType,
                format!("unknown message type {shown:?}"),
                id,
            ));
        }
    };
    Ok(Request { id, body })
}

fn parse_request_id(raw: &RawValue) -> Result<RequestId, Rejection> {
    let invalid = || {
        Rejection::new(
            ErrorCode::Schema,
            format!(
                "id must be a string of at most {MAX_REQUEST_ID_LEN} bytes or a non-negative integer"
            ),
            None,
        )
    };
    match serde_json::from_str::<RequestId>(raw.get()) {
        Ok(RequestId::Text(s)) if s.len() > MAX_REQUEST_ID_LEN => Err(invalid()),
        Ok(id) => Ok(id),
        Err(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(text: &str) -> Rejection {
        match parse(text) {
            Ok(req) => panic!("accepted {text}: {req:?}"),
            Err(r) => r,
        }
    }

    const PEER: &str = "00112233445566778899aabbccddeeff00112233";

    #[test]
    fn malformed_frames_get_the_right_code_and_keep_the_id() {
        assert_eq!(rejection("not json").code, ErrorCode::BadJson);
        assert_eq!(rejection("[1,2]").code, ErrorCode::BadJson);
        assert_eq!(rejection(r#"{"type":5}"#).code, ErrorCode::BadJson);
        assert_eq!(rejection(r#"{"id":1}"#).code, ErrorCode::BadJson);
        let r = rejection(r#"{"type":"nope","id":"x"}"#);
        assert_eq!(
            (r.code, r.id),
            (ErrorCode::UnknownType, Some(RequestId::Text("x".into())))
        );
        let r = rejection(r#"{"type":"ping","id":3,"extra":true}"#);
        assert_eq!(
            (r.code, r.id),
            (ErrorCode::Schema, Some(RequestId::Number(3)))
        );
        let r = rejection(r#"{"type":"ping","id":{"a":1}}"#);
        assert_eq!((r.code, r.id), (ErrorCode::Schema, None));
        let long = "x".repeat(65);
        assert_eq!(
            rejection(&format!(r#"{{"type":"ping","id":"{long}"}}"#)).code,
            ErrorCode::Schema
        );
        assert_eq!(
            rejection(r#"{"type":"ping","id":-1}"#).code,
            ErrorCode::Schema
        );
    }

    #[test]
    fn relay_keeps_data_raw_and_refuses_a_client_from() {
        let text = format!(
            r#"{{"type":"offer","id":7,"to":"{PEER}","sid":"s","data":{{"sdp":"v=0\r\n","type":"offer"}}}}"#
        );
        let req = parse(&text).unwrap();
        let Inbound::Peer(PeerRequest::Relay(relay)) = req.body else {
            panic!("not a relay")
        };
        assert_eq!(relay.kind, RelayKind::Offer);
        assert_eq!(relay.data.get(), r#"{"sdp":"v=0\r\n","type":"offer"}"#);
        let with_from = format!(r#"{{"type":"answer","to":"{PEER}","from":"{PEER}","data":null}}"#);
        assert_eq!(rejection(&with_from).code, ErrorCode::Schema);
        let no_data = format!(r#"{{"type":"candidate","to":"{PEER}"}}"#);
        assert_eq!(rejection(&no_data).code, ErrorCode::Schema);
        let long_sid = format!(
            r#"{{"type":"bye","to":"{PEER}","sid":"{}","data":null}}"#,
            "s".repeat(129)
        );
        assert_eq!(rejection(&long_sid).code, ErrorCode::Schema);
        assert_eq!(
            rejection(r#"{"type":"bye","to":"ABC","data":null}"#).code,
            ErrorCode::Schema
        );
    }

    #[test]
    fn topics_are_validated() {
        assert!(parse(r#"{"type":"join","topic":"lobby"}"#).is_ok());
        assert_eq!(
            rejection(r#"{"type":"join","topic":""}"#).code,
            ErrorCode::Schema
        );
        assert_eq!(
            rejection(r#"{"type":"join","topic":"a\nb"}"#).code,
            ErrorCode::Schema
        );
        let long = "t".repeat(129);
        assert_eq!(
            rejection(&format!(r#"{{"type":"join","topic":"{long}"}}"#)).code,
            ErrorCode::Schema
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_text(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_valid_requests(
            kind in proptest::sample::select(vec![
                "register", "offer", "answer", "candidate", "bye", "join", "leave",
                "discover", "lookup", "ping", "pong", "",
            ]),
            key in "[a-z_]{0,12}",
            value in proptest::prop_oneof![
                proptest::strategy::Just("null".to_owned()),
                "-?[0-9]{1,25}",
                "\"[0-9a-f]{0,80}\"",
                proptest::strategy::Just("{}".to_owned()),
                proptest::strategy::Just("[\"t\"]".to_owned()),
            ],
        ) {
            let text = format!(r#"{{"type":"{kind}","id":1,"{key}":{value}}}"#);
            if let Err(rejection) = parse(&text) {
                // Whenever the id was readable, the rejection carries it.
                proptest::prop_assert!(
                    rejection.id.is_some() || rejection.code == ErrorCode::BadJson,
                    "{text}: {rejection:?}"
                );
            }
        }
    }
}
