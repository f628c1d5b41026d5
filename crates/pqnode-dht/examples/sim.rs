//! Runs the deterministic simulator at scale and prints its figures: lookup rounds next to
//! lookup latency (virtual milliseconds) with no churn, after churn, and after churn with loss,
//! and record availability after churn.
//!
//! ```text
//! cargo run --release -p pqnode-dht --example sim -- --nodes 10000 --seed 1
//! ```
//! Flags: `--nodes N` (default 10000), `--seed S` (1), `--lookups L` (500), `--records R`
//! (200), `--targets T` (200: lookups of dead nodes' ids, and as many of live ones), `--kill F` (0.3: fraction of the nodes killed at once), `--loss P` (0.1: per
//! transmission), `--second-wave F` (0.3: fraction of the survivors killed before records are
//! read again), `--wait M` (0: virtual minutes the network then runs before a last read; 35
//! lets every surviving publisher republish once), `--paths D` (1: S/Kademlia disjoint lookup
//! paths), `--quic B` (true: add the loss scenario with QUIC-style resends), `--turnover H`
//! (0: instead of the scenarios, H hours in which `--rate F` (0.1) of the live nodes are
//! replaced every 10 minutes, records read every hour, with and without storer republish).
//!
//! Each scenario starts from the same network (built again from the seed: tables filled by
//! joins and a first bucket refresh, no loss) and kills the same nodes; see
//! `pqnode_dht::sim::scenario` for what is measured.

use std::time::{Duration, Instant as WallClock};

use pqnode_dht::Config;
use pqnode_dht::sim::scenario::{self, Scenario, ScenarioReport, Turnover, Workload};
use pqnode_dht::sim::{
    LookupFigures, LossRecovery, Percentiles, RecordFigures, SimConfig, Simulator,
};

struct Args {
    nodes: usize,
    seed: u64,
    workload: Workload,
    loss: f64,
    kill: f64,
    second_wave: f64,
    wait: u64,
    paths: usize,
    quic: bool,
    /// Hours of turnover to run instead of the standard scenarios (0: none).
    turnover: u64,
    /// Fraction of the live nodes replaced every 10 minutes during turnover.
    rate: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 10_000,
        seed: 1,
        workload: Workload {
            lookups: 500,
            records: 200,
            targets: 200,
        },
        loss: 0.1,
        kill: 0.3,
        second_wave: 0.3,
        wait: 0,
        paths: 1,
        quic: true,
        turnover: 0,
        rate: 0.1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse().map_err(|_| bad())?,
            "--seed" => args.seed = value.parse().map_err(|_| bad())?,
            "--lookups" => args.workload.lookups = value.parse().map_err(|_| bad())?,
            "--records" => args.workload.records = value.parse().map_err(|_| bad())?,
            "--targets" => args.workload.targets = value.parse().map_err(|_| bad())?,
            "--loss" => args.loss = value.parse().map_err(|_| bad())?,
            "--kill" => args.kill = value.parse().map_err(|_| bad())?,
            "--second-wave" => args.second_wave = value.parse().map_err(|_| bad())?,
            "--wait" => args.wait = value.parse().map_err(|_| bad())?,
            "--paths" => args.paths = value.parse().map_err(|_| bad())?,
            "--quic" => args.quic = value.parse().map_err(|_| bad())?,
            "--turnover" => args.turnover = value.parse().map_err(|_| bad())?,
            "--rate" => args.rate = value.parse().map_err(|_| bad())?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "seed {} nodes {} lookups {} records {} kill {} loss {} second wave {} wait {} min paths {} (same seed, same figures)",
        args.seed,
        args.nodes,
        args.workload.lookups,
        args.workload.records,
        args.kill,
        args.loss,
        args.second_wave,
        args.wait,
        args.paths
    );
    let started = WallClock::now();
    if args.turnover > 0 {
        run_turnover(&args);
        println!("\ntotal: {:.1} s wall", started.elapsed().as_secs_f64());
        return;
    }
    let churn = Scenario {
        second_wave: args.second_wave,
        wait: Duration::from_secs(args.wait * 60),
        ..Scenario::churn(args.kill, 0.0)
    };
    let mut scenarios = vec![
        ("no churn, no loss".to_string(), Scenario::CALM),
        (format!("{} % churn", pct(args.kill)), churn.clone()),
        (
            format!("{} % churn + {} % loss", pct(args.kill), pct(args.loss)),
            Scenario {
                loss: args.loss,
                ..churn.clone()
            },
        ),
    ];
    if args.quic {
        scenarios.push((
            format!(
                "{} % churn + {} % loss, resent (QUIC)",
                pct(args.kill),
                pct(args.loss)
            ),
            Scenario {
                loss: args.loss,
                recovery: LossRecovery::Retransmit,
                ..churn
            },
        ));
    }
    let mut reports = Vec::new();
    for (i, (name, scenario)) in scenarios.iter().enumerate() {
        let clock = WallClock::now();
        let mut sim = network(&args, i == 0);
        let built = clock.elapsed();
        let report = scenario::run(&mut sim, scenario, args.workload);
        println!(
            "\n{name}: killed {} then {} ({:.1} s wall to build, {:.1} s to measure)",
            report.killed,
            report.killed_second,
            built.as_secs_f64(),
            (clock.elapsed() - built).as_secs_f64()
        );
        println!("  lookups:      {}", report.lookups);
        println!("  same again:   {}", report.repeat);
        println!("  records:      {}", report.records);
        if report.dead_targets.started > 0 {
            println!("  dead ids:     {}", report.dead_targets);
        }
        println!(
            "  live ids:     {} (found {})",
            report.live_targets, report.live_targets_found
        );
        if let Some(r) = &report.second_wave {
            println!("  second wave:  {r}");
        }
        if let Some(r) = &report.after_wait {
            println!("  {} min later: {r}", args.wait);
        }
        let c = report.counters;
        println!(
            "  network: {} messages delivered, {} dropped, {} resent, {} requests to dead nodes, {} events",
            c.messages_delivered,
            c.messages_dropped,
            c.retransmits,
            c.requests_to_dead,
            c.events_processed
        );
        reports.push((name.clone(), report));
    }
    print_tables(&args, &reports);
    println!("\ntotal: {:.1} s wall", started.elapsed().as_secs_f64());
}

/// Records through hours of turnover, with and without storer republish.
fn run_turnover(args: &Args) {
    let steps = args.turnover * 6;
    let newcomers = (args.nodes as f64 * args.rate * steps as f64 * 1.2).ceil() as usize;
    let turnover = Turnover {
        initial: args.nodes,
        records: args.workload.records,
        rate: args.rate,
        step: Duration::from_secs(600),
        duration: Duration::from_secs(args.turnover * 3600),
        read_every: Duration::from_secs(3600),
    };
    let mut rows = Vec::new();
    for replicate in [None, Config::default().replicate_interval] {
        let clock = WallClock::now();
        let report = scenario::turnover(
            SimConfig {
                nodes: args.nodes + newcomers,
                seed: args.seed,
                node: Config {
                    replicate_interval: replicate,
                    disjoint_paths: args.paths,
                    ..Config::default()
                },
                ..SimConfig::default()
            },
            &turnover,
        );
        let name = match replicate {
            Some(every) => format!("every {} min", every.as_secs() / 60),
            None => "none".to_string(),
        };
        println!(
            "\nstorer republish {name}: {} left, {} joined ({:.1} s wall)",
            report.left,
            report.joined,
            clock.elapsed().as_secs_f64()
        );
        for (after, reads) in &report.reads {
            println!("  after {:>4} min: {reads}", after.as_secs() / 60);
        }
        let c = report.counters;
        println!(
            "  network: {} messages delivered, {} requests to dead nodes",
            c.messages_delivered, c.requests_to_dead
        );
        rows.push((name, report));
    }
    println!(
        "\nRecords through turnover, {} nodes, seed {}: every 10 min {} % of the live nodes leave and as many newcomers join; {} records published once, their publishers gone at once:\n",
        args.nodes,
        args.seed,
        pct(args.rate),
        args.workload.records
    );
    println!("| storer republish | after | live copies per record | found | read p50 |");
    println!("|---|---:|---:|---:|---:|");
    for (name, report) in &rows {
        for (after, r) in &report.reads {
            println!(
                "| {name} | {} h | {:.1} | {:.1} % | {:.0} |",
                after.as_secs() / 3600,
                r.replicas,
                r.found_percent(),
                ms(r.latency.p50)
            );
        }
    }
}

/// The network every scenario starts from, built from the seed.
fn network(args: &Args, describe: bool) -> Simulator {
    let clock = WallClock::now();
    let mut sim = Simulator::new(SimConfig {
        nodes: args.nodes,
        seed: args.seed,
        node: Config {
            disjoint_paths: args.paths,
            ..Config::default()
        },
        ..SimConfig::default()
    });
    sim.bootstrap_all();
    if describe {
        let n = sim.len();
        let tables: Vec<usize> = (0..n)
            .filter_map(|i| sim.node(i))
            .map(|n| n.table().len())
            .collect();
        let rtts: Vec<Duration> = (0..20_000)
            .map(|i| sim.link_rtt(i * 7919 % n, (i * 104_729 + 1) % n))
            .collect();
        println!(
            "network: {} nodes built in {:.1} s wall ({:.1} s virtual), mean table {:.1} entries; link RTT {}",
            n,
            clock.elapsed().as_secs_f64(),
            sim.now().elapsed().as_secs_f64(),
            tables.iter().sum::<usize>() as f64 / n.max(1) as f64,
            Percentiles::of(&rtts),
        );
    }
    sim
}

fn print_tables(args: &Args, reports: &[(String, ScenarioReport)]) {
    println!(
        "\nLookups, {} nodes, seed {} (latency in virtual ms):\n",
        args.nodes, args.seed
    );
    println!(
        "| scenario | finished | overlap | rounds | requests | stalled | p50 | p90 | p99 | max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in reports {
        lookup_row(name, &r.lookups);
        lookup_row(&format!("{name}, repeated"), &r.repeat);
    }
    println!(
        "\nLookups of a node's own id, {} nodes, seed {}: {} of nodes killed by the churn, {} of live nodes (found: the target was the first contact returned):\n",
        args.nodes, args.seed, args.workload.targets, args.workload.targets
    );
    println!("| scenario | target | found | stalled | p50 | p90 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (name, r) in reports {
        if r.dead_targets.started > 0 {
            target_row(name, "dead", &r.dead_targets, None);
        }
        target_row(name, "live", &r.live_targets, Some(r.live_targets_found));
    }
    println!(
        "\nRecords, {} nodes, seed {}: {} records, version 1 then 2, published before the churn; read once by a live node that is not the publisher:\n",
        args.nodes, args.seed, args.workload.records
    );
    println!("| scenario | when | stored on | found | newest | read p50 | read p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (name, r) in reports {
        record_row(name, "after the churn", &r.records);
        if let Some(w) = &r.second_wave {
            record_row(name, "after a second wave", w);
        }
        if let Some(w) = &r.after_wait {
            record_row(name, &format!("{} min later", args.wait), w);
        }
    }
}

fn lookup_row(name: &str, f: &LookupFigures) {
    let l = f.latency;
    println!(
        "| {name} | {}/{} | {:.3} | {:.2} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} |",
        f.finished,
        f.started,
        f.overlap,
        f.rounds,
        f.requests,
        f.stalled,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max)
    );
}

fn target_row(name: &str, target: &str, f: &LookupFigures, found: Option<usize>) {
    let l = f.latency;
    let found = found.map_or("-".to_string(), |n| format!("{n}/{}", f.started));
    println!(
        "| {name} | {target} | {found} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} |",
        f.stalled,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max)
    );
}

fn record_row(name: &str, when: &str, f: &RecordFigures) {
    println!(
        "| {name} | {when} | {:.1} | {:.1} % | {:.1} % | {:.0} | {:.0} |",
        f.replicas,
        f.found_percent(),
        f.newest_percent(),
        ms(f.latency.p50),
        ms(f.latency.p99)
    );
}

fn pct(fraction: f64) -> String {
    format!("{}", (fraction * 100.0).round())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
