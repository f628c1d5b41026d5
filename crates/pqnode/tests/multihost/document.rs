//! A CRDT document edited on hosts on both sides of the partition, through the REST API
//! (`POST /api/docs/{doc}/updates` answers once the update is on that node's disk), and read
//! back as text from every host that holds it.

use std::time::{Duration, Instant};

use yrs::{Text, Transact};

/// The document and the root text every writer edits.
pub(crate) const DOC: &str = "multihost-notes";
const ROOT: &str = "t";

/// One editor: its own Yjs client, so edits on different hosts are concurrent as in real use.
pub(crate) struct Editor {
    doc: yrs::Doc,
}

impl Editor {
    pub(crate) fn new() -> Self {
        Self {
            doc: yrs::Doc::new(),
        }
    }

    /// Appends `text` to what this editor has written; the update that does it (Yjs v1).
    pub(crate) fn append(&self, text: &str) -> Vec<u8> {
        let root = self.doc.get_or_insert_text(ROOT);
        let mut txn = self.doc.transact_mut();
        let len = root.len(&txn);
        root.insert(&mut txn, len, text);
        txn.encode_update_v1()
    }
}

/// Sends `update` to `url`'s node; `Ok(version)` once it is acknowledged (durable there).
pub(crate) async fn write(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    update: Vec<u8>,
) -> Result<u64, String> {
    let response = http
        .post(format!("{base}/api/docs/{DOC}/updates"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(update)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("{status}: no JSON body: {e}"))?;
    match (status, body["version"].as_u64()) {
        (201, Some(version)) => Ok(version),
        _ => Err(format!("{status} {body}")),
    }
}

/// The document's text on one node; `None` while that node does not hold it.
pub(crate) async fn text(http: &reqwest::Client, base: &str, token: &str) -> Option<String> {
    let response = http
        .get(format!("{base}/api/docs/{DOC}/text?root={ROOT}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["text"].as_str().map(str::to_owned)
}

/// Waits until every one of `nodes` (base URL, token) holds the same text with every piece
/// in `pieces`; `Ok(time since `since`)` then, or what each node held at `limit`.
pub(crate) async fn converge(
    http: &reqwest::Client,
    nodes: &[(String, String)],
    pieces: &[&str],
    since: Instant,
    limit: Duration,
) -> Result<Duration, String> {
    loop {
        let mut texts = Vec::with_capacity(nodes.len());
        for (base, token) in nodes {
            texts.push(text(http, base, token).await);
        }
        let complete = texts.iter().all(|t| {
            t.as_deref()
                .is_some_and(|t| pieces.iter().all(|p| t.contains(p)))
        });
        if complete && texts.windows(2).all(|w| w[0] == w[1]) {
            return Ok(since.elapsed());
        }
        if since.elapsed() >= limit {
            return Err(format!(
                "document {DOC} did not converge on {pieces:?} within {:.0} s: {texts:?}",
                limit.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
