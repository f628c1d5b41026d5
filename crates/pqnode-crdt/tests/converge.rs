//! Property: random concurrent edits from several clients, each going through its own session,
//! converge to the text a direct yrs merge of the same edits gives.

mod common;

use common::{Client, engine};
use pqnode_crdt::DocConfig;
use proptest::prelude::*;
use yrs::{Doc, GetString, Text, Transact};

#[derive(Debug, Clone)]
enum Edit {
    Insert { pos: usize, text: String },
    Delete { pos: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), "[a-z ]{1,6}").prop_map(|(pos, text)| Edit::Insert { pos, text }),
        1 => (any::<usize>(), 1usize..4).prop_map(|(pos, len)| Edit::Delete { pos, len }),
    ]
}

/// Rounds of edits: in each round every client edits its own copy before anyone syncs.
fn script() -> impl Strategy<Value = Vec<Vec<(usize, Edit)>>> {
    prop::collection::vec(prop::collection::vec((0usize..3, edit()), 1..6), 1..5)
}

/// Applies `edit` to `doc` and returns the update it made.
fn perform(doc: &Doc, edit: &Edit) -> Vec<u8> {
    let text = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    let len = text.get_string(&txn).len();
    match edit {
        Edit::Insert { pos, text: s } => text.insert(&mut txn, (pos % (len + 1)) as u32, s),
        Edit::Delete { pos, len: n } if len > 0 => {
            let at = pos % len;
            text.remove_range(&mut txn, at as u32, (*n).min(len - at) as u32);
        }
        Edit::Delete { .. } => {}
    }
    txn.encode_update_v1()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_edits_through_the_engine_converge_like_a_direct_merge(rounds in script()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut config = DocConfig::default();
            config.compact_every_updates = 5;
            let (_store, docs) = engine(&dir, config).await;
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(Client::connect(&docs, "prop").await);
            }
            let mut all_updates = Vec::new();
            for round in rounds {
                // Everyone edits offline, then sends; nobody hears anyone before the round ends.
                let mut outbox: Vec<(usize, Vec<u8>)> = Vec::new();
                for (who, edit) in &round {
                    let update = perform(&clients[*who].doc, edit);
                    outbox.push((*who, update));
                }
                for (who, update) in outbox {
                    all_updates.push(update.clone());
                    let message = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
                    clients[who].send(message).await;
                }
                for client in &mut clients {
                    client.pump().await;
                }
            }
            // The reference: every update merged straight into one yrs document.
            let reference = Doc::new();
            for update in &all_updates {
                common::apply(&reference, update);
            }
            let expected = common::text_of(&reference);
            for client in &clients {
                prop_assert_eq!(client.text(), expected.clone());
            }
            let server = match docs.text(&common::name("prop"), "t").await {
                Ok(text) => text.unwrap_or_default(),
                Err(pqnode_crdt::DocError::NotFound { .. }) => String::new(),
                Err(error) => panic!("{error}"),
            };
            prop_assert_eq!(server, expected);
            Ok(())
        })?;
    }
}
