//! The driver reports what it does through the `metrics` facade.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use common::network_of;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Totals per metric, keyed `name{label=value,...}`: counters add up, gauges keep the last
/// value, histograms count their samples.
#[derive(Default)]
struct Totals(Mutex<BTreeMap<String, f64>>);

struct Slot {
    totals: Arc<Totals>,
    key: String,
}

impl Slot {
    fn update(&self, f: impl FnOnce(&mut f64)) {
        let mut totals = self.totals.0.lock().unwrap_or_else(|e| e.into_inner());
        f(totals.entry(self.key.clone()).or_default());
    }
}

impl CounterFn for Slot {
    fn increment(&self, value: u64) {
        self.update(|t| *t += value as f64);
    }
    fn absolute(&self, value: u64) {
        self.update(|t| *t = value as f64);
    }
}

impl GaugeFn for Slot {
    fn increment(&self, value: f64) {
        self.update(|t| *t += value);
    }
    fn decrement(&self, value: f64) {
        self.update(|t| *t -= value);
    }
    fn set(&self, value: f64) {
        self.update(|t| *t = value);
    }
}

impl HistogramFn for Slot {
    fn record(&self, _value: f64) {
        self.update(|t| *t += 1.0);
    }
}

struct TotalsRecorder(Arc<Totals>);

impl TotalsRecorder {
    fn slot(&self, key: &Key) -> Arc<Slot> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Slot {
            totals: self.0.clone(),
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
        })
    }
}

impl Recorder for TotalsRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.slot(key))
    }
}

fn totals() -> Arc<Totals> {
    static TOTALS: OnceLock<Arc<Totals>> = OnceLock::new();
    TOTALS
        .get_or_init(|| {
            let totals = Arc::new(Totals::default());
            metrics::set_global_recorder(TotalsRecorder(totals.clone()))
                .unwrap_or_else(|_| panic!("a recorder was already installed"));
            totals
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpcs_lookups_table_churn_and_bad_requests_are_counted() {
    let totals = totals();
    let nodes = network_of(6).await;
    let outcome = nodes[0]
        .overlay
        .lookup(nodes[5].id())
        .await
        .expect("lookup");
    assert!(outcome.requests > 0);
    let garbage = bytes::Bytes::from_static(b"\xff\xff");
    nodes[1].network.add_address(nodes[2].id(), nodes[2].addr);
    let refused = nodes[1]
        .network
        .request(nodes[2].id(), pqnode_overlay::DHT, garbage)
        .await;
    assert!(
        matches!(refused, Err(pqnode_net::RequestError::Remote { .. })),
        "{refused:?}"
    );

    let seen = totals.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let value = |key: &str| seen.get(key).copied().unwrap_or(0.0);
    assert!(value("pqnode_dht_requests_sent_total{type=find_node}") >= f64::from(outcome.requests));
    assert!(
        value("pqnode_dht_requests_received_total{type=find_node}") >= f64::from(outcome.requests)
    );
    assert!(
        value("pqnode_dht_requests_sent_total{type=ping}") >= 1.0,
        "verification pings"
    );
    assert!(value("pqnode_dht_rpc_duration_seconds{type=find_node}") >= 1.0);
    assert!(value("pqnode_dht_lookup_rounds{operation=find_node}") >= 1.0);
    assert!(value("pqnode_dht_lookup_duration_seconds{operation=bootstrap}") >= 5.0);
    assert!(value("pqnode_dht_table_inserts_total{}") >= 5.0);
    assert!(value("pqnode_dht_table_nodes{}") >= 1.0);
    assert_eq!(value("pqnode_dht_bad_requests_total{}"), 1.0);

    common::stop_all(nodes).await;
}
