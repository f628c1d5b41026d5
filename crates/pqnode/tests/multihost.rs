//! Five hosts, each a network namespace of its own, joined through a router that adds delay
//! and loss (a userspace netem over TUN: this kernel has no `sch_netem`), one `pqnode` per
//! host. Bootstrap and lookups; a signaling client on host 1 reaching one on host 4; then a
//! partition of hosts {4, 5} from {1, 2, 3}, both ways, and a heal: lookups, records,
//! federation, direct messages and a CRDT document edited on both sides recover, and nothing
//! acknowledged is lost.
//!
//! Needs root and `/dev/net/tun`; without them it is skipped, except under `CI`, where it
//! fails. It prints its figures as one block; it asserts on behaviour only, never on time
//! (beyond generous limits that keep a hung recovery from hanging CI).

mod common;
mod multihost {
    pub(crate) mod document;
    pub(crate) mod netem;
    pub(crate) mod netns;
    pub(crate) mod peer;
}

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{NodeOptions, TestNode};
use futures_util::future::join_all;
use multihost::document::{self, Editor};
use multihost::netem::Link;
use multihost::netns::{self, Host, Topology};
use multihost::peer::HostPeer;
use serde_json::{Value, json};

/// Each host's access link: one-way delay and loss. A packet between hosts a and b crosses
/// both links: 25-55 ms one way (RTT 50-110 ms) and 1.5-4.5 % loss per packet.
const LINKS: [(u64, f64); 5] = [
    (10, 0.010),
    (15, 0.005),
    (20, 0.020),
    (25, 0.015),
    (30, 0.025),
];
/// The hosts cut off from the others during the partition (1-based).
const MINORITY: [u8; 2] = [4, 5];
/// How long the partition lasts: longer than QUIC's idle timeout (30 s), so connections
/// across it die, and than a DHT ping round, so contacts across it fail.
const PARTITION: Duration = Duration::from_secs(45);
/// Upper bound on recovery after the heal before the test fails (not a target: 0.2-11 s
/// measured); with the bootstrap's 75 s it keeps a bad run under nextest's 240 s.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

/// One host's node.
struct Node {
    host: Host,
    node: TestNode,
    id: String,
    token: String,
    /// Dropped after `node` (fields drop in order): the process is gone before its folder.
    _dir: tempfile::TempDir,
}

impl Node {
    fn url(&self, path: &str) -> String {
        self.node.url(path)
    }

    fn n(&self) -> u8 {
        self.host.index
    }

    /// The last warnings and errors of the node's log, for failure messages.
    fn troubles(&self) -> String {
        let log = self.node.log_text();
        let lines: Vec<&str> = log
            .lines()
            .skip_while(|l| !l.contains("pqnode is ready"))
            .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
            .collect();
        let tail = &lines[lines.len().saturating_sub(12)..];
        format!("--- host {} ({}):\n{}", self.n(), self.id, tail.join("\n"))
    }
}

/// Lookups find live targets. Every pair looked up found its target at least once, and a
/// lookup that missed may only have missed for one known cause, which the figures report: a
/// request of the lookup failed (a lost QUIC packet whose retransmission outlasts the DHT's
/// hard timeout for a measured contact, twice its RTO but at least 250 ms, fails the request
/// although the node is alive), and that for at most 5 % of the lookups. A lookup that ended
/// without its target and without any failed request (it did not wait for an answer that
/// was coming, or never asked the target) fails the test, as does any error.
fn assert_lookups_find(phase: &str, samples: &[Sample], nodes: &[Node]) {
    let missed: Vec<&Sample> = samples.iter().filter(|s| !s.found).collect();
    let unexplained: Vec<&str> = missed
        .iter()
        .filter(|s| !s.some_request_failed)
        .map(|s| s.what.as_str())
        .collect();
    let never: BTreeSet<&str> = samples
        .iter()
        .map(|s| s.pair.as_str())
        .filter(|pair| !samples.iter().any(|s| s.found && s.pair == *pair))
        .collect();
    assert!(
        never.is_empty() && unexplained.is_empty() && missed.len() * 20 <= samples.len().max(20),
        "{} of {} lookups {phase} missed their target; pairs that never found it: {never:?}; \
         misses with no failed request: {unexplained:?}; all misses:\n{}\n{}",
        missed.len(),
        samples.len(),
        missed
            .iter()
            .take(8)
            .map(|s| s.what.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        troubles(nodes)
    );
}

/// A failed run keeps every node's log: `<tmp>/pqnode-multihost-<pid>-h<n>.log`.
impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = std::env::temp_dir().join(format!(
                "pqnode-multihost-{}-h{}.log",
                std::process::id(),
                self.n()
            ));
            if std::fs::write(&path, self.node.log_text()).is_ok() {
                eprintln!(
                    "multihost: host {}'s log is in {}",
                    self.n(),
                    path.display()
                );
            }
        }
    }
}

fn troubles(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(Node::troubles)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One lookup as the test saw it.
#[derive(Clone)]
struct Sample {
    took: Duration,
    found: bool,
    /// Who looked up whom, as "a -> b".
    pair: String,
    /// The node answered and said at least one request of the lookup failed.
    some_request_failed: bool,
    /// For failure messages and figures: what came back when it missed.
    what: String,
}

/// A direct message some node acknowledged as stored.
struct Sent {
    from: usize,
    to: usize,
    body: String,
}

/// A record some node answered 200 for.
struct Published {
    by: usize,
    key: String,
    value: String,
}

/// Everything acknowledged during the run: all of it must be there at the end.
#[derive(Default)]
struct Ledger {
    messages: Vec<Sent>,
    records: Vec<Published>,
    /// Offers from X to Y that X's node acknowledged as `forwarded`.
    offers: BTreeSet<u64>,
}

#[test]
fn five_hosts_with_delay_loss_and_a_partition_recover_and_lose_nothing_acknowledged() {
    if let Some(why) = netns::unavailable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the multi-host test: it {why}"
        );
        println!("multihost: SKIPPED (it {why})");
        return;
    }
    let links: Vec<Link> = LINKS
        .iter()
        .map(|&(ms, loss)| Link {
            delay: Duration::from_millis(ms),
            loss,
        })
        .collect();
    let topology =
        Topology::create(&links).unwrap_or_else(|e| panic!("building the network failed: {e}"));
    // The test's HTTP client runs in the router namespace: it reaches every host's API
    // directly, around the netem (see netns.rs). Every thread the runtime starts inherits it.
    netns::in_ns(&topology.router, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(scenario(&topology))
    });
    // The nodes are gone by now (the scenario owned them); then the namespaces go.
    drop(topology);
}

async fn scenario(topology: &Topology) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(25))
        .build()
        .expect("an HTTP client");
    let netem = topology.netem();
    let mut ledger = Ledger::default();
    let mut report = String::new();
    let run_started = Instant::now();

    // --- Bootstrap: host 1 first, the others join through it.
    let first = start_node(&topology.hosts[0], None).await;
    let seed = format!("{}@{}:4001", first.id, first.host.addr);
    let joining = Instant::now();
    let mut nodes = vec![first];
    nodes.extend(
        join_all(
            topology.hosts[1..]
                .iter()
                .map(|h| start_node(h, Some(seed.clone()))),
        )
        .await,
    );
    let all = nodes.len();
    let bootstrap = wait_for_tables(&http, &nodes, joining).await;

    // --- Lookups before: every node finds every other, three times.
    let pairs_all: Vec<(usize, usize)> = pairs(&nodes, |_, _| true);
    let mut before = Vec::new();
    for _ in 0..3 {
        for &(a, b) in &pairs_all {
            before.push(lookup(&http, &nodes[a], &nodes[b]).await);
        }
    }
    assert_lookups_find("before the partition", &before, &nodes);

    // Records and messages before the partition, all acknowledged.
    for i in 0..all {
        let published = publish_until(&http, &nodes, i, "before", Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("host {} could not publish: {e}", i + 1));
        ledger.records.push(published);
        let to = (i + 1) % all;
        let body = format!("before: {} -> {}", i + 1, to + 1);
        send_until(&http, &nodes, i, to, &body, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{body}: never acknowledged: {e}"));
        ledger.messages.push(Sent { from: i, to, body });
    }

    // --- Signaling: a client on host 1 offers to a client on host 4 and gets the answer.
    let topic = "multihost";
    let mut x = HostPeer::connect(&nodes[0].host.ns, signaling_addr(&nodes[0]), topic).await;
    let mut y = HostPeer::connect(&nodes[3].host.ns, signaling_addr(&nodes[3]), topic).await;
    let mut y_offers = BTreeSet::new();
    let signaling_started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        x.send(json!({ "type": "discover", "id": "d", "topic": topic }));
        let peers = x
            .next_where(Duration::from_secs(20), |v| v["type"] == "peers")
            .await
            .expect("an answer to discover");
        let listed = peers["peers"].as_array().cloned().unwrap_or_default();
        if let Some(entry) = listed.iter().find(|p| p["peer_id"] == y.id.as_str()) {
            assert_eq!(entry["node_id"], nodes[3].id.as_str(), "{peers}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client on host 4 never appeared in discover on host 1: {peers}\n{}",
            troubles(&nodes)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let discovered = signaling_started.elapsed();
    let offered = Instant::now();
    let ack = offer(&mut x, &y.id, 1).await;
    assert_eq!(ack["status"], "forwarded", "{ack}");
    ledger.offers.insert(1);
    let got = next_offer(&mut y, &mut y_offers, Duration::from_secs(20)).await;
    assert_eq!(
        got.as_ref().map(|o| &o["from"]),
        Some(&json!(x.id)),
        "{got:?}"
    );
    y.send(json!({ "type": "answer", "id": 1, "to": x.id, "data": { "type": "answer", "sdp": "v=0" } }));
    let answer = x
        .next_where(Duration::from_secs(20), |v| v["type"] == "answer")
        .await
        .expect("the answer from host 4 reached host 1");
    assert_eq!(answer["from"], y.id.as_str());
    let offer_round_trip = offered.elapsed();

    // --- A CRDT document written on hosts 1 and 4 replicates between them.
    let (editor_1, editor_4) = (Editor::new(), Editor::new());
    let doc_started = Instant::now();
    write_doc(&http, &nodes[0], editor_1.append("[1 before]")).await;
    write_doc(&http, &nodes[3], editor_4.append("[4 before]")).await;
    let doc_replicated = document::converge(
        &http,
        &doc_holders(&nodes, &[0, 3]),
        &["[1 before]", "[4 before]"],
        doc_started,
        RECOVERY_LIMIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", troubles(&nodes)));

    // --- Partition: {4, 5} cut off from {1, 2, 3}, both ways.
    let majority: Vec<usize> = (0..all)
        .filter(|&i| !MINORITY.contains(&nodes[i].n()))
        .collect();
    let minority: Vec<usize> = (0..all)
        .filter(|&i| MINORITY.contains(&nodes[i].n()))
        .collect();
    let cut_before = netem.counters().cut;
    netem.partition(&MINORITY);
    let cut_at = Instant::now();
    // Each side edits the document: host 2 (which did not hold it) and host 4. Both writes are
    // acknowledged, by the node that took them, while the other side is unreachable.
    write_doc(&http, &nodes[1], Editor::new().append("[2 during]")).await;
    write_doc(&http, &nodes[3], editor_4.append("[4 during]")).await;
    let partition_ends = cut_at + PARTITION;
    let (during, acted) = tokio::join!(
        majority_lookups(&http, &nodes, &majority, partition_ends),
        during_partition(&http, &nodes, &majority, &minority, &mut x, &y.id),
    );
    ledger.messages.extend(acted.messages);
    ledger.records.extend(acted.records);
    assert_lookups_find("within the majority during the partition", &during, &nodes);
    tokio::time::sleep_until(partition_ends.into()).await;
    assert!(
        netem.counters().cut > cut_before,
        "the netem never dropped a packet for the partition"
    );

    // --- Heal, and time how long each capability takes to come back.
    netem.heal();
    let healed = Instant::now();
    let cross: Vec<(usize, usize)> = pairs(&nodes, |a, b| {
        MINORITY.contains(&a.n()) != MINORITY.contains(&b.n())
    });
    let acked_records: Vec<&Published> = ledger.records.iter().collect();
    let doc_nodes = doc_holders(&nodes, &[0, 1, 3]);
    let (lookups_back, messages_back, federation_back, records_back, document_back) = tokio::join!(
        lookups_recover(&http, &nodes, &cross, healed),
        messages_recover(&http, &nodes, &majority, &minority, healed),
        federation_recovers(&mut x, &mut y, &mut y_offers, healed),
        records_recover(&http, &nodes, &acked_records, healed),
        document::converge(&http, &doc_nodes, &DOC_PIECES, healed, RECOVERY_LIMIT),
    );
    let (messages_back, sent_after) = messages_back;
    ledger.messages.extend(sent_after);
    let (federation_back, offer_seq) = federation_back;
    ledger.offers.extend(offer_seq);
    let failures: Vec<&String> = [
        &lookups_back,
        &messages_back,
        &federation_back,
        &records_back,
        &document_back,
    ]
    .into_iter()
    .filter_map(|r| r.as_ref().err())
    .collect();
    if !failures.is_empty() {
        panic!(
            "not everything recovered after the heal:\n{}\n{}\n{}",
            failures
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            tables(&http, &nodes).await,
            troubles(&nodes)
        );
    }
    let secs = |r: &Recovery| r.as_ref().map_or(f64::NAN, |d| d.as_secs_f64());
    let (lookups_back, messages_back, federation_back, records_back, document_back) = (
        secs(&lookups_back),
        secs(&messages_back),
        secs(&federation_back),
        secs(&records_back),
        secs(&document_back),
    );

    // --- After: every pair again, and new records and messages across the former cut.
    let mut after = Vec::new();
    for _ in 0..3 {
        for &(a, b) in &pairs_all {
            after.push(lookup(&http, &nodes[a], &nodes[b]).await);
        }
    }
    assert_lookups_find("after recovery", &after, &nodes);
    for &i in [majority[0], minority[0]].iter() {
        let published = publish_until(&http, &nodes, i, "after", Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("host {} could not publish after the heal: {e}", i + 1));
        ledger.records.push(published);
    }

    // --- Nothing acknowledged is lost.
    for record in &ledger.records {
        for reader in &nodes {
            let got = read_record(&http, reader, &record.key).await;
            let got = got.unwrap_or_else(|e| {
                panic!(
                    "record {} (acknowledged to host {}) unreadable on host {}: {e}",
                    record.key,
                    record.by + 1,
                    reader.n()
                )
            });
            assert_eq!(got["value"], record.value.as_str(), "{got}");
            assert_eq!(got["publisher"], nodes[record.by].id.as_str(), "{got}");
        }
    }
    let mut lost_messages = Vec::new();
    for (to, receiver) in nodes.iter().enumerate() {
        let stored = stored_messages(&http, receiver).await;
        for sent in ledger.messages.iter().filter(|m| m.to == to) {
            if !stored.contains(&(nodes[sent.from].id.clone(), sent.body.clone())) {
                lost_messages.push(format!("{:?} to host {}", sent.body, to + 1));
            }
        }
    }
    assert!(
        lost_messages.is_empty(),
        "acknowledged messages missing at their receivers: {lost_messages:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = next_offer(&mut y, &mut y_offers, Duration::from_millis(200)).await;
    for v in y.drain() {
        if v["type"] == "offer"
            && let Some(seq) = v["data"]["seq"].as_u64()
        {
            y_offers.insert(seq);
        }
    }
    let lost_offers: Vec<&u64> = ledger.offers.difference(&y_offers).collect();
    assert!(
        lost_offers.is_empty(),
        "offers acknowledged as forwarded never reached host 4: {lost_offers:?}"
    );

    // --- The figures, as one block.
    let counters = netem.counters();
    let _ = writeln!(report, "multihost figures ({} hosts, one pqnode each)", all);
    let _ = writeln!(
        report,
        "  links (one way, per host): {}; a packet crosses two links, no jitter",
        LINKS
            .iter()
            .enumerate()
            .map(|(i, (ms, loss))| format!("h{} {ms} ms {:.1}%", i + 1, loss * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        report,
        "  netem: {} packets forwarded, {} lost at random ({:.2}%), {} cut by the partition",
        counters.forwarded,
        counters.lost,
        100.0 * counters.lost as f64 / (counters.forwarded + counters.lost).max(1) as f64,
        counters.cut
    );
    let _ = writeln!(report, "  bootstrap: {bootstrap}");
    let _ = writeln!(
        report,
        "  signaling: host 4's client discovered from host 1 in {:.2} s; offer + answer round trip {} ms",
        discovered.as_secs_f64(),
        offer_round_trip.as_millis()
    );
    let _ = writeln!(report, "  lookups before : {}", summary(&before));
    let _ = writeln!(
        report,
        "  lookups during : {} (within {{1,2,3}}, {:.0} s partition)",
        summary(&during),
        PARTITION.as_secs_f64()
    );
    let _ = writeln!(report, "  lookups after  : {}", summary(&after));
    for miss in before
        .iter()
        .chain(&during)
        .chain(&after)
        .filter(|s| !s.found)
    {
        let _ = writeln!(report, "    a lookup missed: {}", miss.what);
    }
    let _ = writeln!(
        report,
        "  during the partition: cross lookups {}; cross messages {}; cross offer {}",
        acted.cross_lookups, acted.cross_messages, acted.cross_offer
    );
    let _ = writeln!(
        report,
        "  recovery after the heal: lookups across {:.1} s, records readable everywhere {:.1} s, \
         direct messages across {:.1} s, federation (offer host 1 -> host 4) {:.1} s",
        lookups_back, records_back, messages_back, federation_back
    );
    let _ = writeln!(
        report,
        "  document: written on hosts 1 and 4, the same text on both {:.1} s later; edited on \
         hosts 2 and 4 during the partition; the same text with every edit on 1, 2, 4 {:.1} s \
         after the heal",
        doc_replicated.as_secs_f64(),
        document_back
    );
    let _ = writeln!(
        report,
        "  acknowledged and kept: {} records, {} direct messages, {} offers, {} document \
         updates; lost: 0",
        ledger.records.len(),
        ledger.messages.len(),
        ledger.offers.len(),
        DOC_PIECES.len()
    );
    let _ = write!(
        report,
        "  total {:.0} s",
        run_started.elapsed().as_secs_f64()
    );
    println!("{report}");
    drop((x, y));
    drop(nodes);
}

/// The document's edits, each acknowledged by the node that took it.
const DOC_PIECES: [&str; 4] = ["[1 before]", "[4 before]", "[2 during]", "[4 during]"];

/// Writes one edit to the test document on `node`; it must be acknowledged.
async fn write_doc(http: &reqwest::Client, node: &Node, update: Vec<u8>) {
    if let Err(e) = document::write(http, &node.url(""), &node.token, update).await {
        panic!("host {} did not acknowledge a document edit: {e}", node.n());
    }
}

/// Base URL and token of the hosts at `indices`.
fn doc_holders(nodes: &[Node], indices: &[usize]) -> Vec<(String, String)> {
    indices
        .iter()
        .map(|&i| (nodes[i].url(""), nodes[i].token.clone()))
        .collect()
}

/// Ordered pairs (a, b), a != b, that `keep` accepts.
fn pairs(nodes: &[Node], keep: impl Fn(&Node, &Node) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for a in 0..nodes.len() {
        for b in 0..nodes.len() {
            if a != b && keep(&nodes[a], &nodes[b]) {
                out.push((a, b));
            }
        }
    }
    out
}

/// Starts `host`'s node inside its namespace, bound to the host's address.
async fn start_node(host: &Host, bootstrap: Option<String>) -> Node {
    let host = host.clone();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("a data folder");
        let mut opts = NodeOptions::new(dir.path());
        for (flag, port) in [
            ("--api-addr", 3000),
            ("--signaling-addr", 3001),
            ("--p2p-addr", 4001),
        ] {
            opts = opts.arg(flag).arg(format!("{}:{port}", host.addr));
        }
        if let Some(seed) = bootstrap {
            opts = opts.arg("--bootstrap").arg(seed);
        }
        // More detail in the nodes' logs (kept when the test fails), e.g.
        // MULTIHOST_NODE_LOG=info,pqnode_dht=debug,pqnode_overlay=debug.
        if let Ok(filter) = std::env::var("MULTIHOST_NODE_LOG") {
            opts = opts.env("PQNODE_LOG", filter);
        }
        // A process inherits the namespace of the thread that spawns it.
        let node = netns::in_ns(&host.ns, || TestNode::start(opts));
        let id = node.ready["node_id"]
            .as_str()
            .expect("node_id in the ready line")
            .to_owned();
        let token = common::token(&node);
        Node {
            host,
            node,
            id,
            token,
            _dir: dir,
        }
    })
    .await
    .expect("starting a node")
}

fn signaling_addr(node: &Node) -> std::net::SocketAddr {
    node.node.ready["signaling"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the signaling address in the ready line")
}

/// How long every routing table takes to hold every other node. A node whose first contact
/// failed (a post-quantum handshake that loses packets can outlast the DHT's 5 s request
/// timeout) retries its bootstrap on the next refresh, 60 s +- 10 % later, so this waits up
/// to 75 s; then it settles for every node having joined (holding at least one other) and
/// says which tables are short. The lookups that follow check that everyone is found.
async fn wait_for_tables(http: &reqwest::Client, nodes: &[Node], since: Instant) -> String {
    let deadline = Instant::now() + Duration::from_secs(75);
    loop {
        let mut sizes = Vec::new();
        for node in nodes {
            let size = get(http, node, "/api/dht/nodes")
                .await
                .ok()
                .and_then(|b| b["stats"]["totalNodes"].as_u64())
                .unwrap_or(0);
            sizes.push(size);
        }
        let full = (nodes.len() - 1) as u64;
        if sizes.iter().all(|&n| n >= full) {
            return format!(
                "every table full {:.1} s after hosts 2-{} started",
                since.elapsed().as_secs_f64(),
                nodes.len()
            );
        }
        if Instant::now() >= deadline {
            let listed: Vec<String> = nodes
                .iter()
                .zip(&sizes)
                .map(|(node, n)| format!("h{} {n}", node.n()))
                .collect();
            assert!(
                sizes.iter().all(|&n| n >= 1),
                "not every node joined within 75 s (table sizes: {listed:?})\n{}",
                troubles(nodes)
            );
            return format!(
                "tables still short {:.0} s after start (of {full}: {}); every node joined",
                since.elapsed().as_secs_f64(),
                listed.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn get(http: &reqwest::Client, node: &Node, path: &str) -> Result<Value, String> {
    let response = http
        .get(node.url(path))
        .bearer_auth(&node.token)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("{status}: no JSON body: {e}"))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status} {}", body["error"]["code"]))
    }
}

async fn post(
    http: &reqwest::Client,
    node: &Node,
    path: &str,
    body: Value,
) -> Result<Value, String> {
    let response = http
        .post(node.url(path))
        .bearer_auth(&node.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("{status}: no JSON body: {e}"))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status} {}", body["error"]["code"]))
    }
}

/// A lookup of `to`'s id from `from`, timed as the client sees it.
async fn lookup(http: &reqwest::Client, from: &Node, to: &Node) -> Sample {
    let started = Instant::now();
    let answer = get(http, from, &format!("/api/dht/lookup/{}", to.id)).await;
    let found = answer.as_ref().is_ok_and(|outcome| {
        outcome["closest"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["id"] == to.id.as_str()))
    });
    let took = started.elapsed();
    let some_request_failed = answer
        .as_ref()
        .is_ok_and(|outcome| outcome["failures"].as_u64().unwrap_or(0) > 0);
    let what = match answer {
        Ok(_) if found => String::new(),
        Ok(outcome) => format!(
            "{} -> {} after {} ms: not among the {} that answered (requests {}, failures {})",
            from.n(),
            to.n(),
            took.as_millis(),
            outcome["closest"].as_array().map_or(0, Vec::len),
            outcome["requests"],
            outcome["failures"]
        ),
        Err(e) => format!(
            "{} -> {} after {} ms: {e}",
            from.n(),
            to.n(),
            took.as_millis()
        ),
    };
    let pair = format!("{} -> {}", from.n(), to.n());
    Sample {
        took,
        found,
        pair,
        some_request_failed,
        what,
    }
}

/// Lookups among `side`, each node in turn for every other, until `until`; a pause between
/// two keeps this a measurement rather than a load test on a shared machine.
async fn majority_lookups(
    http: &reqwest::Client,
    nodes: &[Node],
    side: &[usize],
    until: Instant,
) -> Vec<Sample> {
    let per_source = side.iter().map(|&a| async move {
        let mut samples = Vec::new();
        'outer: loop {
            for &b in side.iter().filter(|&&b| b != a) {
                if Instant::now() >= until {
                    break 'outer;
                }
                samples.push(lookup(http, &nodes[a], &nodes[b]).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        samples
    });
    join_all(per_source).await.into_iter().flatten().collect()
}

/// Publishes a record named `<phase>-<host>` on node `i`, retrying until `within`.
async fn publish_until(
    http: &reqwest::Client,
    nodes: &[Node],
    i: usize,
    phase: &str,
    within: Duration,
) -> Result<Published, String> {
    let name = format!("{phase}-{}", i + 1);
    let value = format!("{phase} from host {}", i + 1);
    let deadline = Instant::now() + within;
    loop {
        let body = json!({ "name": name, "value": value, "ttlSecs": 3600 });
        match post(http, &nodes[i], "/api/dht/records", body).await {
            Ok(put) => {
                let key = put["key"].as_str().ok_or("no key in the answer")?;
                return Ok(Published {
                    by: i,
                    key: key.to_owned(),
                    value,
                });
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Sends a direct message once; `Ok` only when the receiver acknowledged it as stored.
async fn send_message(
    http: &reqwest::Client,
    nodes: &[Node],
    from: usize,
    to: usize,
    body: &str,
) -> Result<(), String> {
    let request = json!({ "to": nodes[to].id, "body": body });
    post(http, &nodes[from], "/api/messages", request)
        .await
        .map(drop)
}

/// Sends until acknowledged or `within` passed.
async fn send_until(
    http: &reqwest::Client,
    nodes: &[Node],
    from: usize,
    to: usize,
    body: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match send_message(http, nodes, from, to, body).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn read_record(http: &reqwest::Client, node: &Node, key: &str) -> Result<Value, String> {
    get(http, node, &format!("/api/dht/records/{key}")).await
}

/// (sender id, body) of every message `node` has stored.
async fn stored_messages(http: &reqwest::Client, node: &Node) -> BTreeSet<(String, String)> {
    let list = get(http, node, "/api/messages?limit=1000")
        .await
        .unwrap_or_else(|e| panic!("listing host {}'s messages: {e}", node.n()));
    list["messages"]
        .as_array()
        .expect("a message list")
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap_or_default().to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Sends offer `seq` from `from` to peer `to` and returns the server's `ack` or `error`.
async fn offer(from: &mut HostPeer, to: &str, seq: u64) -> Value {
    from.send(json!({
        "type": "offer", "id": seq, "to": to,
        "data": { "type": "offer", "sdp": "v=0\r\n", "seq": seq },
    }));
    from.next_where(Duration::from_secs(20), |v| {
        (v["type"] == "ack" || v["type"] == "error") && v["id"] == seq
    })
    .await
    .unwrap_or_else(|| json!({ "type": "error", "code": "NO_ANSWER_IN_20_S", "id": seq }))
}

/// The next offer `peer` receives within `within`; every offer seen is noted in `seen`.
async fn next_offer(
    peer: &mut HostPeer,
    seen: &mut BTreeSet<u64>,
    within: Duration,
) -> Option<Value> {
    let got = peer.next_where(within, |v| v["type"] == "offer").await?;
    if let Some(seq) = got["data"]["seq"].as_u64() {
        seen.insert(seq);
    }
    Some(got)
}

/// What happened on both sides while the partition lasted.
#[derive(Default)]
struct DuringPartition {
    messages: Vec<Sent>,
    records: Vec<Published>,
    cross_lookups: String,
    cross_messages: String,
    cross_offer: String,
}

/// Within each side, records and messages keep being acknowledged; across, lookups find
/// nothing, messages are not acknowledged and offers are refused.
async fn during_partition(
    http: &reqwest::Client,
    nodes: &[Node],
    majority: &[usize],
    minority: &[usize],
    x: &mut HostPeer,
    y: &str,
) -> DuringPartition {
    let (m0, m1, m2) = (majority[0], majority[1], majority[2]);
    let (n0, n1) = (minority[0], minority[1]);
    let within = Duration::from_secs(30);

    let cross_lookups = join_all(
        [(m0, n0), (m1, n1), (n0, m0), (n1, m2)]
            .into_iter()
            .map(|(a, b)| lookup(http, &nodes[a], &nodes[b])),
    );
    let records = join_all(
        [m1, n1]
            .into_iter()
            .map(|i| publish_until(http, nodes, i, "during", within)),
    );
    let inside: Vec<(usize, usize)> = vec![(m0, m2), (m2, m1), (n0, n1), (n1, n0)];
    let messages = join_all(inside.iter().map(|&(a, b)| async move {
        let body = format!("during, same side: {} -> {}", a + 1, b + 1);
        let sent = send_until(http, nodes, a, b, &body, within).await;
        (a, b, body, sent)
    }));
    let across = join_all([(m1, n0), (n1, m0)].into_iter().map(|(a, b)| async move {
        let started = Instant::now();
        let body = format!("during, across: {} -> {}", a + 1, b + 1);
        let sent = send_message(http, nodes, a, b, &body).await;
        (a, b, body, sent, started.elapsed())
    }));
    let cross_offer = async {
        let started = Instant::now();
        (offer(x, y, 2).await, started.elapsed())
    };
    let (cross_lookups, records, messages, across, (offer_answer, offer_took)) =
        tokio::join!(cross_lookups, records, messages, across, cross_offer);

    let mut out = DuringPartition::default();
    let found = cross_lookups.iter().filter(|s| s.found).count();
    assert_eq!(
        found, 0,
        "lookups found nodes across the partition: the netem lets packets through"
    );
    out.cross_lookups = format!(
        "found 0/{} (took {})",
        cross_lookups.len(),
        cross_lookups
            .iter()
            .map(|s| format!("{:.1} s", s.took.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for record in records {
        let record = record.unwrap_or_else(|e| {
            panic!(
                "a record could not be published within its side of the partition: {e}\n{}",
                troubles(nodes)
            )
        });
        out.records.push(record);
    }
    for (a, b, body, sent) in messages {
        sent.unwrap_or_else(|e| {
            panic!(
                "a message within one side of the partition was never acknowledged ({body}): {e}\n{}",
                troubles(nodes)
            )
        });
        out.messages.push(Sent {
            from: a,
            to: b,
            body,
        });
    }
    let mut cross_messages = Vec::new();
    for (a, b, body, sent, took) in across {
        match sent {
            Ok(()) => panic!("{body} was acknowledged across the partition"),
            Err(e) => cross_messages.push(format!(
                "{} -> {} refused ({e}, {:.1} s)",
                a + 1,
                b + 1,
                took.as_secs_f64()
            )),
        }
    }
    out.cross_messages = cross_messages.join(", ");
    assert_ne!(
        offer_answer["type"], "ack",
        "an offer was acknowledged across the partition: {offer_answer}"
    );
    out.cross_offer = format!(
        "refused ({}, {:.1} s)",
        offer_answer["code"].as_str().unwrap_or("?"),
        offer_took.as_secs_f64()
    );
    out
}

/// How one capability came back after the heal: when, or what still failed at the limit.
type Recovery = Result<Duration, String>;

/// Retries every cross pair's lookup until each has found its target once; `Ok` when the
/// last did, measured from the heal.
async fn lookups_recover(
    http: &reqwest::Client,
    nodes: &[Node],
    cross: &[(usize, usize)],
    healed: Instant,
) -> Recovery {
    let mut pending: Vec<(usize, usize)> = cross.to_vec();
    let mut last = Duration::ZERO;
    let mut misses = Vec::new();
    while !pending.is_empty() {
        if healed.elapsed() >= RECOVERY_LIMIT {
            return Err(format!(
                "lookups across the former partition still miss {:.0} s after the heal:\n{}",
                healed.elapsed().as_secs_f64(),
                misses.join("\n")
            ));
        }
        let results = join_all(
            pending
                .iter()
                .map(|&(a, b)| lookup(http, &nodes[a], &nodes[b])),
        )
        .await;
        let before = pending.len();
        misses.clear();
        pending = pending
            .into_iter()
            .zip(results)
            .filter(|(_, s)| !s.found)
            .map(|(p, s)| {
                misses.push(s.what);
                p
            })
            .collect();
        if pending.len() < before {
            last = healed.elapsed();
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(last)
}

/// Sends one message each way across the former partition until both are acknowledged.
async fn messages_recover(
    http: &reqwest::Client,
    nodes: &[Node],
    majority: &[usize],
    minority: &[usize],
    healed: Instant,
) -> (Recovery, Vec<Sent>) {
    let routes = [(majority[0], minority[0]), (minority[1], majority[1])];
    let each = join_all(routes.iter().map(|&(a, b)| async move {
        let body = format!("after the heal: {} -> {}", a + 1, b + 1);
        loop {
            match send_message(http, nodes, a, b, &body).await {
                Ok(()) => {
                    let sent = Sent {
                        from: a,
                        to: b,
                        body,
                    };
                    return (Ok(healed.elapsed()), Some(sent));
                }
                Err(e) if healed.elapsed() >= RECOVERY_LIMIT => {
                    let failed = format!(
                        "{body}: still not acknowledged {:.0} s after the heal: {e}",
                        healed.elapsed().as_secs_f64()
                    );
                    return (Err(failed), None);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }))
    .await;
    let mut took = Ok(Duration::ZERO);
    let mut sent = Vec::new();
    for (outcome, message) in each {
        sent.extend(message);
        took = match (took, outcome) {
            (Ok(a), Ok(b)) => Ok(a.max(b)),
            (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    (took, sent)
}

/// Offers from host 1's client to host 4's until one is forwarded, and checks it arrives;
/// also returns the offer's number when one was acknowledged.
async fn federation_recovers(
    x: &mut HostPeer,
    y: &mut HostPeer,
    y_offers: &mut BTreeSet<u64>,
    healed: Instant,
) -> (Recovery, Option<u64>) {
    let mut seq = 100;
    loop {
        seq += 1;
        let answer = offer(x, &y.id, seq).await;
        if answer["type"] == "ack" {
            let took = healed.elapsed();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !y_offers.contains(&seq) {
                let left = deadline.saturating_duration_since(Instant::now());
                if next_offer(y, y_offers, left).await.is_none() {
                    let lost =
                        format!("offer {seq} was acknowledged ({answer}) but never reached host 4");
                    return (Err(lost), Some(seq));
                }
            }
            return (Ok(took), Some(seq));
        }
        if healed.elapsed() >= RECOVERY_LIMIT {
            let refused = format!(
                "offers from host 1 to host 4 still refused {:.0} s after the heal: {answer}",
                healed.elapsed().as_secs_f64()
            );
            return (Err(refused), None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads every acknowledged record on every node until all are readable.
async fn records_recover(
    http: &reqwest::Client,
    nodes: &[Node],
    records: &[&Published],
    healed: Instant,
) -> Recovery {
    let mut pending: Vec<(usize, &Published)> = records
        .iter()
        .flat_map(|&record| (0..nodes.len()).map(move |reader| (reader, record)))
        .collect();
    let mut last = Duration::ZERO;
    let mut misses = Vec::new();
    while !pending.is_empty() {
        if healed.elapsed() >= RECOVERY_LIMIT {
            return Err(format!(
                "records still unreadable {:.0} s after the heal:\n{}",
                healed.elapsed().as_secs_f64(),
                misses.join("\n")
            ));
        }
        let results = join_all(
            pending
                .iter()
                .map(|&(reader, record)| read_record(http, &nodes[reader], &record.key)),
        )
        .await;
        let before = pending.len();
        misses.clear();
        pending = pending
            .into_iter()
            .zip(results)
            .filter(|((reader, record), got)| {
                let ok = matches!(got, Ok(r) if r["value"] == record.value.as_str());
                if !ok {
                    misses.push(format!(
                        "{:?} (by host {}) on host {}: {got:?}",
                        record.value,
                        record.by + 1,
                        reader + 1
                    ));
                }
                !ok
            })
            .map(|(p, _)| p)
            .collect();
        if pending.len() < before {
            last = healed.elapsed();
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(last)
}

/// Each node's routing table, for failure messages: which hosts it holds, in what state.
async fn tables(http: &reqwest::Client, nodes: &[Node]) -> String {
    let mut out = Vec::new();
    for node in nodes {
        let line = match get(http, node, "/api/dht/nodes").await {
            Ok(body) => body["nodes"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| {
                            let host = nodes
                                .iter()
                                .find(|n| e["id"] == n.id.as_str())
                                .map_or("?".to_owned(), |n| n.n().to_string());
                            format!("h{host} {} {}ms", e["state"], e["lastSeenMsAgo"])
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            Err(e) => e,
        };
        out.push(format!("host {} table: {line}", node.n()));
    }
    out.join("\n")
}

/// `n`, how many found their target, and p50 / p90 / max of the time taken.
fn summary(samples: &[Sample]) -> String {
    let mut times: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    times.sort();
    let at = |q: f64| -> u128 {
        if times.is_empty() {
            return 0;
        }
        // Nearest rank.
        let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
        times[rank - 1].as_millis()
    };
    format!(
        "n={:>3}, found {:>3}/{:<3} p50 {:>5} ms  p90 {:>5} ms  max {:>5} ms",
        samples.len(),
        samples.iter().filter(|s| s.found).count(),
        samples.len(),
        at(0.5),
        at(0.9),
        times.last().map_or(0, |t| t.as_millis())
    )
}
