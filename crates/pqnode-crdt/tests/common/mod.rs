//! Helpers shared by the tests: a store in a temporary folder, and a Yjs client built on yrs
//! that talks to a [`Session`] the way npm `y-websocket` does.

#![allow(dead_code)]

pub(crate) mod mesh;

use pqnode_crdt::{DocConfig, DocName, DocStore, DocSubscription, Session, SessionOptions};
use pqnode_store::Store;
use tempfile::TempDir;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

pub(crate) async fn open_store(dir: &TempDir) -> Store {
    Store::open(dir.path().join("pqnode.redb"))
        .await
        .expect("store")
}

pub(crate) async fn engine(dir: &TempDir, config: DocConfig) -> (Store, DocStore) {
    let store = open_store(dir).await;
    let docs = DocStore::open(store.clone(), config).await.expect("engine");
    (store, docs)
}

pub(crate) fn name(name: &str) -> DocName {
    DocName::new(name).expect("name")
}

/// The update that inserts `text` at `index` of root text "t" in `doc`.
pub(crate) fn insert(doc: &Doc, index: u32, text: &str) -> Vec<u8> {
    let root = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    root.insert(&mut txn, index, text);
    txn.encode_update_v1()
}

pub(crate) fn text_of(doc: &Doc) -> String {
    let root = doc.get_or_insert_text("t");
    root.get_string(&doc.transact())
}

pub(crate) fn apply(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("decode");
    doc.transact_mut().apply_update(update).expect("apply");
}

/// A y-websocket client: a yrs document and awareness, connected to the engine through one
/// [`Session`] and its event feed.
pub(crate) struct Client {
    pub doc: Doc,
    pub awareness: Awareness,
    pub session: Session,
    pub events: DocSubscription,
}

impl Client {
    pub(crate) async fn connect(docs: &DocStore, doc_name: &str) -> Client {
        Self::connect_with(docs, doc_name, SessionOptions::default()).await
    }

    pub(crate) async fn connect_with(
        docs: &DocStore,
        doc_name: &str,
        options: SessionOptions,
    ) -> Client {
        let (session, events, greeting) = Session::open(docs, &name(doc_name), options)
            .await
            .expect("open session");
        let doc = Doc::new();
        let mut client = Client {
            awareness: Awareness::new(doc.clone()),
            doc,
            session,
            events,
        };
        for out in greeting {
            client.receive(&out.frame).await;
        }
        // As y-websocket's provider does on open: its step 1.
        let sv = client.doc.transact().state_vector();
        client.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        client
    }

    /// Sends a message, waits until the updates in it are committed, and handles what the
    /// server answers.
    pub(crate) async fn send(&mut self, message: Message) {
        let replies = self
            .session
            .on_message(&message.encode_v1())
            .await
            .expect("server accepts");
        self.session.flush().await.expect("server commits");
        for out in replies {
            self.receive(&out.frame).await;
        }
    }

    pub(crate) async fn edit(&mut self, index: u32, text: &str) {
        let update = insert(&self.doc, index, text);
        self.send(Message::Sync(SyncMessage::Update(update))).await;
    }

    pub(crate) async fn set_awareness(&mut self, state: &str) {
        self.awareness.set_local_state_raw(state);
        let update = self.awareness.update().expect("awareness update");
        self.send(Message::Awareness(update)).await;
    }

    /// Handles every live event waiting for this client.
    pub(crate) async fn pump(&mut self) {
        while let Some(event) = self.events.try_recv() {
            let frames = self
                .session
                .on_event(event.expect("event"))
                .expect("session");
            for out in frames {
                self.receive(&out.frame).await;
            }
        }
    }

    /// What the client does with a frame from the server.
    async fn receive(&mut self, frame: &[u8]) {
        match Message::decode_v1(frame).expect("server frame decodes") {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                Box::pin(self.send(Message::Sync(SyncMessage::SyncStep2(diff)))).await;
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                apply(&self.doc, &update);
            }
            Message::Awareness(update) => {
                self.awareness.apply_update(update).expect("awareness");
            }
            other => panic!("unexpected message from the server: {other:?}"),
        }
    }

    pub(crate) fn text(&self) -> String {
        text_of(&self.doc)
    }
}
