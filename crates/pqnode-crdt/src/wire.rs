//! The y-protocols wire format as `y-websocket` speaks it, parsed without trusting a byte:
//! lib0 var-uints, messages `[type][payload]` with type 0 sync (sub-types 0 step 1, 1 step 2,
//! 2 update), 1 awareness, 2 auth, 3 query-awareness. Every count is checked against the bytes
//! left before anything is allocated for it.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{ClientID, StateVector};

/// Largest client id Yjs produces (53 bits, a JavaScript safe integer).
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the message ends early")]
    Truncated,
    #[error("a var-uint is longer than 64 bits")]
    VarIntTooLong,
    #[error("{0}")]
    Invalid(String),
}

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn var_u64(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(WireError::VarIntTooLong);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarIntTooLong)
    }

    fn var_u32(&mut self) -> Result<u32, WireError> {
        u32::try_from(self.var_u64()?)
            .map_err(|_| WireError::Invalid("a 32-bit value overflows".into()))
    }

    /// A var-uint length, then that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.var_u64()?;
        if len > self.remaining() as u64 {
            return Err(WireError::Truncated);
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn string(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| WireError::Invalid("a string is not UTF-8".into()))
    }

    /// A count of entries that each take at least `min_entry` bytes: never more than fit.
    fn count(&mut self, min_entry: usize) -> Result<usize, WireError> {
        let count = self.var_u64()?;
        if count > (self.remaining() / min_entry) as u64 {
            return Err(WireError::Invalid(format!(
                "claims {count} entries in {} bytes",
                self.remaining()
            )));
        }
        Ok(count as usize)
    }
}

/// One message read from a frame. Updates stay as bytes: the engine validates them.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    Step1(StateVector),
    Step2(&'a [u8]),
    Update(&'a [u8]),
    /// The raw payload (for its size) and its decoded entries.
    Awareness(&'a [u8], AwarenessUpdate),
    QueryAwareness,
    /// Auth and message types this server does not use: ignored, as y-websocket's server does.
    Ignored(u64),
}

/// Reads the next message of a frame.
pub(crate) fn next_message<'a>(reader: &mut Reader<'a>) -> Result<Incoming<'a>, WireError> {
    match reader.var_u64()? {
        0 => match reader.var_u64()? {
            0 => Ok(Incoming::Step1(state_vector(reader.bytes()?)?)),
            1 => Ok(Incoming::Step2(reader.bytes()?)),
            2 => Ok(Incoming::Update(reader.bytes()?)),
            other => Err(WireError::Invalid(format!(
                "unknown sync message type {other}"
            ))),
        },
        1 => {
            let payload = reader.bytes()?;
            Ok(Incoming::Awareness(payload, awareness(payload)?))
        }
        2 => {
            if reader.var_u64()? == 0 {
                reader.string()?;
            }
            Ok(Incoming::Ignored(2))
        }
        3 => Ok(Incoming::QueryAwareness),
        other => {
            // Unknown types cannot be skipped within a frame: the rest of it is dropped.
            *reader = Reader::new(&[]);
            Ok(Incoming::Ignored(other))
        }
    }
}

pub(crate) fn state_vector(bytes: &[u8]) -> Result<StateVector, WireError> {
    let mut reader = Reader::new(bytes);
    let count = reader.count(2)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let client = client_id(reader.var_u64()?)?;
        entries.push((client, reader.var_u32()?));
    }
    Ok(entries.into_iter().collect())
}

pub(crate) fn awareness(bytes: &[u8]) -> Result<AwarenessUpdate, WireError> {
    let mut reader = Reader::new(bytes);
    let count = reader.count(3)?;
    let mut clients = HashMap::with_capacity(count);
    for _ in 0..count {
        let client = client_id(reader.var_u64()?)?;
        let clock = reader.var_u32()?;
        let json = reader.string()?;
        // Every client JSON-parses the states it receives: one that is not JSON would throw in
        // each of them (in Node.js, an uncaught exception), so it is refused here.
        if serde_json::from_str::<serde::de::IgnoredAny>(json).is_err() {
            return Err(WireError::Invalid(format!(
                "the awareness state of client {client} is not JSON"
            )));
        }
        let json: Arc<str> = json.into();
        clients.insert(client, AwarenessUpdateEntry { clock, json });
    }
    Ok(AwarenessUpdate { clients })
}

fn client_id(value: u64) -> Result<ClientID, WireError> {
    if value > MAX_CLIENT_ID {
        return Err(WireError::Invalid(format!(
            "client id {value} is over 53 bits"
        )));
    }
    Ok(ClientID::new(value))
}

pub(crate) fn step1(sv: StateVector) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()
}

pub(crate) fn step2(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep2(update)).encode_v1()
}

pub(crate) fn update(update: &[u8]) -> Vec<u8> {
    Message::Sync(SyncMessage::Update(update.to_vec())).encode_v1()
}

pub(crate) fn awareness_message(update: AwarenessUpdate) -> Vec<u8> {
    Message::Awareness(update).encode_v1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::updates::decoder::Decode;

    #[test]
    fn what_yrs_encodes_we_read_back() {
        let sv: StateVector = [(ClientID::new(7), 3u32), (ClientID::new(1 << 40), 9)]
            .into_iter()
            .collect();
        let frame = step1(sv.clone());
        let mut reader = Reader::new(&frame);
        assert!(matches!(next_message(&mut reader), Ok(Incoming::Step1(read)) if read == sv));
        assert!(reader.is_empty());

        let frame = update(b"\x00\x00");
        let mut reader = Reader::new(&frame);
        assert!(matches!(
            next_message(&mut reader),
            Ok(Incoming::Update(b"\x00\x00"))
        ));

        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(5),
            AwarenessUpdateEntry {
                clock: 2,
                json: "{\"a\":1}".into(),
            },
        );
        let frame = awareness_message(AwarenessUpdate {
            clients: clients.clone(),
        });
        assert_eq!(
            Message::decode_v1(&frame).ok(),
            Some(Message::Awareness(AwarenessUpdate {
                clients: clients.clone()
            }))
        );
        let mut reader = Reader::new(&frame);
        assert!(
            matches!(next_message(&mut reader), Ok(Incoming::Awareness(_, read)) if read.clients == clients)
        );
    }

    #[test]
    fn var_uints_longer_than_64_bits_are_refused() {
        let mut reader = Reader::new(&[0xff; 11]);
        assert_eq!(reader.var_u64(), Err(WireError::VarIntTooLong));
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(reader.var_u64(), Ok(u64::MAX));
    }

    proptest! {
        #[test]
        fn no_frame_makes_the_reader_panic(frame in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut reader = Reader::new(&frame);
            while !reader.is_empty() {
                match next_message(&mut reader) {
                    Ok(Incoming::Step2(update) | Incoming::Update(update)) => {
                        let _ = crate::ydoc::decode_update(update);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn no_update_bytes_make_decoding_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = crate::ydoc::decode_update(&bytes);
        }
    }
}
