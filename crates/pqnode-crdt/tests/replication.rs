//! Replication between nodes over an in-memory mesh (tests/common/mesh.rs) that carries the
//! real protobuf bytes under the real size cap: convergence after concurrent edits, after a
//! partition heals and after a restart; hostile requests; no update storms; a slow replica;
//! a document at the size cap reaching a new replica whole.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::mesh::{Mesh, Node, node_id};
use common::{insert, name};
use pqnode_crdt::replication::{MAX_REPLICATED_DOC_BYTES, SYNC_MAX_MESSAGE, wire};
use pqnode_crdt::{ConfigError, DocConfig, DocError, DocName, ReplicationConfig, ReplicationError};
use pqnode_testkit::eventually;
use yrs::Doc;

const WAIT: Duration = Duration::from_secs(15);

fn config() -> ReplicationConfig {
    let mut config = ReplicationConfig::default();
    config.anti_entropy_interval = Duration::from_millis(300);
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(200);
    config
}

/// Nodes 1..=n, each tracking `doc`, one after the other (as nodes would join).
async fn cluster(
    mesh: &Arc<Mesh>,
    dir: &tempfile::TempDir,
    n: u8,
    config: &ReplicationConfig,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 1..=n {
        let node = Node::start(mesh, i, dir.path(), config.clone()).await;
        node.replicator.track(&name("doc")).expect("track");
        nodes.push(node);
    }
    nodes
}

/// One writer per node: a yrs client whose edits the node commits as local updates.
struct Writer {
    doc: Doc,
    edits: Vec<String>,
}

impl Writer {
    fn new() -> Self {
        Self {
            doc: Doc::new(),
            edits: Vec::new(),
        }
    }

    /// Commits a marker edit on `node`; returns once it is acknowledged (durable).
    async fn edit(&mut self, node: &Node, doc: &DocName, marker: String) {
        let update = insert(&self.doc, 0, &marker);
        node.docs.apply_update(doc, update).await.expect("acked");
        self.edits.push(marker);
    }
}

async fn converged(nodes: &[&Node], doc: &DocName, markers: &[String]) -> bool {
    let first = nodes[0].text(doc).await;
    if !markers.iter().all(|m| first.contains(m.as_str())) {
        return false;
    }
    for node in &nodes[1..] {
        if node.text(doc).await != first {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_after_concurrent_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let nodes = cluster(&mesh, &dir, 3, &config()).await;
    let doc = name("doc");
    let tasks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let docs = node.docs.clone();
            let doc = doc.clone();
            tokio::spawn(async move {
                let client = Doc::new();
                let mut markers = Vec::new();
                for k in 0..20 {
                    let marker = format!("<{i}:{k}>");
                    let update = insert(&client, 0, &marker);
                    docs.apply_update(&doc, update).await.expect("acked");
                    markers.push(marker);
                }
                markers
            })
        })
        .collect();
    let mut markers = Vec::new();
    for task in tasks {
        markers.extend(task.await.unwrap());
    }
    let all: Vec<&Node> = nodes.iter().collect();
    eventually(WAIT, "three nodes converge", || {
        converged(&all, &doc, &markers)
    })
    .await;
    for node in &nodes {
        let stats = node.replicator.stats();
        assert_eq!(stats.replicas, 2, "full mesh: {stats:?}");
        assert_eq!(stats.refused, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let nodes = cluster(&mesh, &dir, 3, &config()).await;
    let doc = name("doc");
    let mut writers: Vec<Writer> = (0..3).map(|_| Writer::new()).collect();
    for (i, node) in nodes.iter().enumerate() {
        writers[i].edit(node, &doc, format!("<before{i}>")).await;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    let before: Vec<String> = writers.iter().flat_map(|w| w.edits.clone()).collect();
    eventually(WAIT, "converge before the partition", || {
        converged(&all, &doc, &before)
    })
    .await;

    // Node 3 is cut off; both sides keep writing, and every write is acknowledged.
    mesh.partition(nodes[2].id, true);
    for round in 0..5 {
        for (i, node) in nodes.iter().enumerate() {
            writers[i]
                .edit(node, &doc, format!("<split{i}.{round}>"))
                .await;
        }
    }
    let majority: Vec<&Node> = nodes[..2].iter().collect();
    let acked_majority: Vec<String> = writers[..2].iter().flat_map(|w| w.edits.clone()).collect();
    eventually(WAIT, "the majority converges", || {
        converged(&majority, &doc, &acked_majority)
    })
    .await;
    let isolated = nodes[2].text(&doc).await;
    assert!(!isolated.contains("<split0.0>"), "the partition holds");
    assert!(nodes[0].replicator.stats().failures > 0);

    // Heal: the transport would tell each side that the other is reachable again.
    mesh.partition(nodes[2].id, false);
    for node in &nodes[..2] {
        node.replicator.peer_reachable(nodes[2].id);
    }
    for node in &nodes[..2] {
        nodes[2].replicator.peer_reachable(node.id);
    }
    let acked: Vec<String> = writers.iter().flat_map(|w| w.edits.clone()).collect();
    eventually(WAIT, "all converge after the heal", || {
        converged(&all, &doc, &acked)
    })
    .await;
    // A heal is counted when the exchange that brought a failed replica back is settled,
    // which may come just after its data converged.
    eventually(WAIT, "a replica that failed answered again", || {
        let heals: u64 = nodes.iter().map(|n| n.replicator.stats().heals).sum();
        std::future::ready(heals > 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_from_its_store_and_its_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let mut nodes = cluster(&mesh, &dir, 2, &config()).await;
    let doc = name("doc");
    let (mut a, mut b) = (Writer::new(), Writer::new());
    a.edit(&nodes[0], &doc, "<a0>".into()).await;
    b.edit(&nodes[1], &doc, "<b0>".into()).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let markers = ["<a0>".to_owned(), "<b0>".to_owned()];
    eventually(WAIT, "converge", || converged(&all, &doc, &markers)).await;

    // Node 2 goes down; node 1 keeps writing.
    let down = nodes.pop().unwrap();
    down.stop(&mesh).await;
    for k in 1..=10 {
        a.edit(&nodes[0], &doc, format!("<a{k}>")).await;
    }
    // It comes back on the same store and tracks what it holds.
    let back = Node::start(&mesh, 2, dir.path(), config()).await;
    assert!(
        back.text(&doc).await.contains("<b0>"),
        "its own acknowledged edit survived"
    );
    assert_eq!(back.replicator.track_stored().await.unwrap(), 1);
    nodes.push(back);
    let all: Vec<&Node> = nodes.iter().collect();
    let mut markers = a.edits.clone();
    markers.push("<b0>".into());
    eventually(WAIT, "the restarted node catches up", || {
        converged(&all, &doc, &markers)
    })
    .await;
    // No duplicated text: every marker appears once.
    let text = nodes[1].text(&doc).await;
    for marker in &markers {
        assert_eq!(
            text.matches(marker.as_str()).count(),
            1,
            "{marker} in {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_travel_on_through_anti_entropy_not_forwarding() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let nodes = cluster(&mesh, &dir, 3, &config()).await;
    let doc = name("doc");
    // Node 1 cannot reach node 3 (nor 3 reach 1): 1's edit reaches 2 live, and 3 only
    // through its anti-entropy with 2, since 2 does not forward what it got from 1.
    mesh.cut_link(nodes[0].id, nodes[2].id);
    let mut writer = Writer::new();
    writer.edit(&nodes[0], &doc, "<via-2>".into()).await;
    let all: Vec<&Node> = nodes.iter().collect();
    eventually(WAIT, "transitive convergence", || {
        converged(&all, &doc, &writer.edits)
    })
    .await;
    let rounds: u64 = nodes[1..]
        .iter()
        .map(|n| n.replicator.stats().anti_entropy_rounds)
        .sum();
    assert!(rounds > 0, "a round of node 2 or 3 carried it");
}

/// A protobuf field: tag (field number, wire type 2) and length-prefixed bytes.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    let mut len = bytes.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

fn push(doc: &str, update: &[u8]) -> Vec<u8> {
    field(2, &[field(1, doc.as_bytes()), field(2, update)].concat())
}

fn exchange(doc: &str, state_vector: &[u8]) -> Vec<u8> {
    field(
        1,
        &[field(1, doc.as_bytes()), field(2, state_vector)].concat(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_nothing_else_is_affected() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let nodes = cluster(&mesh, &dir, 2, &config()).await;
    let doc = name("doc");
    let mut writer = Writer::new();
    writer.edit(&nodes[0], &doc, "<intact>".into()).await;
    let all: Vec<&Node> = nodes.iter().collect();
    eventually(WAIT, "converge", || converged(&all, &doc, &writer.edits)).await;
    let target = &nodes[0];
    let before = target.text(&doc).await;
    let version = target.docs.info(&doc).await.unwrap().unwrap().version;

    let mut oversized = push("doc", &[0; 16]);
    oversized.resize(SYNC_MAX_MESSAGE + 1, 0);
    let mut truncated = push("doc", &[1, 2, 3, 4, 5, 6]);
    truncated.truncate(truncated.len() - 3);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\xff\xfe\xfd\x00garbage".to_vec()),
        ("empty", Vec::new()),
        ("oversized", oversized),
        ("a length past the end", truncated),
        (
            "a field over its cap",
            exchange("doc", &vec![1; wire::MAX_STATE_VECTOR + 1]),
        ),
        ("a bad document name", push("../etc/passwd", &[0, 0])),
        (
            "a malformed update",
            push("doc", &[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]),
        ),
        (
            "an update claiming many clients",
            push("doc", &[0xff, 0xff, 0x03, 0]),
        ),
        (
            "a malformed state vector",
            exchange("doc", &[0x05, 0xff, 0xff]),
        ),
        ("garbage for a new document", push("fresh", &[9, 9, 9])),
    ];
    for (what, payload) in hostile {
        let outcome = target.replicator.handle(node_id(66), payload.into()).await;
        match outcome {
            Err(error) => assert!(error.is_caller_fault(), "{what}: {error}"),
            Ok(_) => panic!("{what} was accepted"),
        }
    }
    assert_eq!(target.text(&doc).await, before);
    assert_eq!(
        target.docs.info(&doc).await.unwrap().unwrap().version,
        version
    );
    assert_eq!(
        target.replicator.tracked(),
        vec![doc.clone()],
        "nothing new tracked"
    );
    assert!(target.docs.info(&name("fresh")).await.unwrap().is_none());
    assert_eq!(target.replicator.stats().refused, 10);
    assert_eq!(
        target.replicator.stats().replicas,
        1,
        "the hostile node is no replica"
    );

    // Replication with the honest node goes on.
    writer.edit(&nodes[1], &doc, "<after>".into()).await;
    eventually(WAIT, "still replicating", || {
        converged(&all, &doc, &writer.edits)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_not_accepting_replicas_answers_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let mut closed = config();
    closed.accept_new = false;
    let node = Node::start(&mesh, 1, dir.path(), closed).await;
    let request = exchange("unknown", &[]);
    let reply = node
        .replicator
        .handle(node_id(2), request.into())
        .await
        .unwrap();
    assert_eq!(
        wire::SyncResponse::decode(&reply),
        Ok(wire::SyncResponse::NotHeld)
    );
    assert!(node.replicator.tracked().is_empty());
    let error = node
        .replicator
        .handle(node_id(2), b"\x00".to_vec().into())
        .await;
    assert!(matches!(error, Err(ReplicationError::Wire(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_costs_one_push_per_replica_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let mut quiet = config();
    quiet.anti_entropy_interval = Duration::from_secs(600);
    let nodes = cluster(&mesh, &dir, 3, &quiet).await;
    let doc = name("doc");
    let mut writer = Writer::new();
    writer.edit(&nodes[0], &doc, "<first>".into()).await;
    let all: Vec<&Node> = nodes.iter().collect();
    eventually(WAIT, "converge", || converged(&all, &doc, &writer.edits)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = mesh.requests();
    let edits = 20;
    for k in 0..edits {
        // Each edit lands on a different node and is awaited everywhere before the next.
        let node = &nodes[k % 3];
        writer.edit(node, &doc, format!("<e{k}>")).await;
        eventually(WAIT, "edit arrives", || {
            converged(&all, &doc, &writer.edits)
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = mesh.requests() - start;
    // One push from the editing node to each of the two others; nobody forwards it again.
    assert_eq!(requests, 2 * edits, "requests for {edits} edits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_replica_gets_a_bounded_queue_and_anti_entropy_instead() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let mut small = config();
    small.live_queue_updates = 4;
    let nodes = cluster(&mesh, &dir, 2, &small).await;
    let doc = name("doc");
    let mut writer = Writer::new();
    writer.edit(&nodes[0], &doc, "<0>".into()).await;
    let all: Vec<&Node> = nodes.iter().collect();
    eventually(WAIT, "converge", || converged(&all, &doc, &writer.edits)).await;

    mesh.slow_down(nodes[1].id, Duration::from_millis(50));
    for k in 1..200 {
        writer.edit(&nodes[0], &doc, format!("<{k}>")).await;
    }
    assert!(nodes[0].replicator.stats().queue_overflows > 0);
    eventually(WAIT, "the slow replica catches up", || {
        converged(&all, &doc, &writer.edits)
    })
    .await;
}

/// Every document a replicating node acknowledges can reach a replica that has none of it:
/// one at the size cap travels whole in one exchange, and no store can be set up to accept
/// documents too large for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_at_the_size_cap_reaches_a_new_replica_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let first = Node::start(&mesh, 1, dir.path(), config()).await;
    let doc = name("doc");
    first.replicator.track(&doc).expect("track");
    let client = Doc::new();
    let chunk = MAX_REPLICATED_DOC_BYTES as usize / 3;
    let mut written = 0;
    for k in 0..3u8 {
        let text = char::from(b'a' + k).to_string().repeat(chunk - 64);
        let update = insert(&client, written, &text);
        first.docs.apply_update(&doc, update).await.expect("acked");
        written += text.len() as u32;
    }
    let over = insert(&client, 0, &"z".repeat(64 * 1024));
    assert!(
        matches!(
            first.docs.apply_update(&doc, over).await,
            Err(DocError::DocumentTooLarge { .. })
        ),
        "the cap holds"
    );

    let second = Node::start(&mesh, 2, dir.path(), config()).await;
    second.replicator.track(&doc).expect("track");
    eventually(
        WAIT,
        "the whole document reaches the new replica",
        || async { second.text(&doc).await.len() == written as usize },
    )
    .await;
    assert_eq!(second.text(&doc).await, first.text(&doc).await);

    let mut too_large = DocConfig::default();
    too_large.max_doc_bytes = MAX_REPLICATED_DOC_BYTES + 1;
    let refused = Node::start_with(&mesh, 3, dir.path(), config(), too_large).await;
    assert!(
        matches!(
            refused,
            Err(ReplicationError::InvalidConfig(
                ConfigError::DocTooLargeToReplicate { .. }
            ))
        ),
        "{:?}",
        refused.err()
    );
}

/// A replica that stays listed but never answers (dead, or hostile) must not hold a slot for
/// good: with one slot per document, nodes 2 and 3 both find node 1 first, which is cut
/// off; slots change hands each anti-entropy round, so 2 and 3 reach each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_never_answers_does_not_keep_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = Mesh::new();
    let mut one_slot = config();
    one_slot.max_replicas_per_doc = 1;
    let nodes = cluster(&mesh, &dir, 3, &one_slot).await;
    let doc = name("doc");
    mesh.partition(nodes[0].id, true);
    let (mut on_2, mut on_3) = (Writer::new(), Writer::new());
    on_2.edit(&nodes[1], &doc, "<from 2>".into()).await;
    on_3.edit(&nodes[2], &doc, "<from 3>".into()).await;
    let honest = [&nodes[1], &nodes[2]];
    let markers = ["<from 2>".to_owned(), "<from 3>".to_owned()];
    eventually(WAIT, "2 and 3 converge around the silent node", || {
        converged(&honest, &doc, &markers)
    })
    .await;
    let rotated: u64 = honest
        .iter()
        .map(|n| n.replicator.stats().replicas_rotated)
        .sum();
    assert!(rotated > 0, "a slot changed hands");
}
