//! Latency under churn and loss, in virtual time: the standard scenarios of
//! `pqnode_dht::sim::scenario` at 800 nodes, with loose thresholds that still fail if lookups
//! stop finishing, stop avoiding dead contacts, or wait for the wrong things. Each test prints
//! its seed and figures; the 10 000-node figures are in the crate README.

use std::time::Duration;

use pqnode_dht::Config;
use pqnode_dht::sim::scenario::{self, Scenario, ScenarioReport, Workload};
use pqnode_dht::sim::{LossRecovery, SimConfig, Simulator};

const NODES: usize = 800;
const SEED: u64 = 7;
const WORKLOAD: Workload = Workload {
    lookups: 200,
    records: 60,
};

fn run(nodes: usize, seed: u64, refuse: f64, scenario: &Scenario) -> ScenarioReport {
    let mut sim = Simulator::new(SimConfig {
        nodes,
        seed,
        refuse,
        ..SimConfig::default()
    });
    sim.bootstrap_all();
    let report = scenario::run(&mut sim, scenario, WORKLOAD);
    println!("seed {seed}, {nodes} nodes, {scenario:?}, dead nodes refuse: {refuse}");
    println!("  lookups:    {}", report.lookups);
    println!("  same again: {}", report.repeat);
    println!("  records:    {}", report.records);
    if let Some(r) = &report.second_wave {
        println!("  2nd wave:   {r}");
    }
    report
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn churn_costs_the_timeouts_of_dead_contacts_and_a_repeat_does_not_pay_them_again() {
    let calm = run(NODES, SEED, 0.0, &Scenario::CALM);
    let silent = run(NODES, SEED, 0.0, &Scenario::churn(0.3, 0.0));
    // The same network and the same dead nodes, but a request to a dead node fails after one
    // round trip instead of going unanswered.
    let refused = run(NODES, SEED, 1.0, &Scenario::churn(0.3, 0.0));

    for r in [&calm, &silent, &refused] {
        assert_eq!(r.lookups.finished, r.lookups.started);
        assert!(r.lookups.overlap >= 0.95, "overlap {}", r.lookups.overlap);
    }
    assert!(calm.lookups.stalled < 2.0, "calm: {}", calm.lookups);
    assert!(
        silent.lookups.stalled >= 3.0,
        "dead contacts are asked and time out: {}",
        silent.lookups
    );
    let (calm_p50, silent_p50, refused_p50) = (
        ms(calm.lookups.latency.p50),
        ms(silent.lookups.latency.p50),
        ms(refused.lookups.latency.p50),
    );
    assert!(
        silent_p50 >= 1.5 * calm_p50,
        "churn costs time: {silent_p50} ms against {calm_p50} ms calm"
    );
    // Where dead nodes answer at once, churn costs little: the time above went into waiting
    // for their timeouts, not into extra hops.
    assert!(
        refused_p50 <= 1.5 * calm_p50 && silent_p50 >= 1.4 * refused_p50,
        "calm {calm_p50} ms, refused {refused_p50} ms, silent {silent_p50} ms"
    );
    // Bounded: the soft timeout moves a lookup past a dead contact well before the hard one.
    let hard = Config::default().request_timeout;
    assert!(
        silent.lookups.latency.max < hard,
        "max {:?}",
        silent.lookups.latency.max
    );
    // Dead contacts failed once are left out of the next lookups.
    assert!(silent.repeat.stalled < 1.0, "repeat: {}", silent.repeat);
    assert!(
        ms(silent.repeat.latency.p50) <= 1.3 * calm_p50,
        "repeat p50 {} ms against {calm_p50} ms calm",
        ms(silent.repeat.latency.p50)
    );
}

#[test]
fn lookups_and_records_survive_churn_with_loss() {
    let drop = run(
        NODES,
        SEED,
        0.0,
        &Scenario {
            second_wave: 0.3,
            ..Scenario::churn(0.3, 0.1)
        },
    );
    let resent = run(
        NODES,
        SEED,
        0.0,
        &Scenario {
            recovery: LossRecovery::Retransmit,
            ..Scenario::churn(0.3, 0.1)
        },
    );
    for r in [&drop, &resent] {
        assert_eq!(r.lookups.finished, r.lookups.started);
        assert!(
            r.lookups.latency.max < Duration::from_secs(10),
            "{}",
            r.lookups
        );
        assert_eq!(r.records.found, r.records.records, "{}", r.records);
    }
    // Under datagram loss the update's put misses some holders of version 1 (its lookup
    // finds a different ~80 % of the closest), and a read ends once three holders agree,
    // on whichever version answered first: a few reads return version 1.
    assert!(drop.records.newest_percent() >= 88.0, "{}", drop.records);
    assert!(
        resent.records.newest_percent() >= 97.0,
        "{}",
        resent.records
    );
    // A lost message is an unanswered request: the contact misses this lookup. About one
    // request/response pair in five is lost, so ~80 % is what to expect.
    assert!(drop.lookups.overlap >= 0.7, "{}", drop.lookups);
    // Resent, a lost message costs time but not the contact.
    assert!(resent.lookups.overlap >= 0.93, "{}", resent.lookups);
    assert!(resent.counters.retransmits > 0);
    let second = drop.second_wave.expect("a second wave");
    assert!(second.found_percent() >= 95.0, "{second}");
}

#[test]
fn the_same_seed_gives_the_same_figures() {
    let scenario = Scenario {
        second_wave: 0.3,
        ..Scenario::churn(0.3, 0.1)
    };
    let a = run(300, 3, 0.0, &scenario);
    let b = run(300, 3, 0.0, &scenario);
    assert_eq!(a, b);
    let c = run(300, 4, 0.0, &scenario);
    assert_ne!(a.lookups, c.lookups);
}
