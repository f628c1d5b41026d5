//! What post-quantum TLS costs on our QUIC transport, measured against the
//! same stack (quinn + rustls + aws-lc-rs) configured classically with
//! X25519 + Ed25519 raw keys, in one run. Prints figures and ratios; never
//! fails on time.
//!
//! Run: `cargo bench -p pqnode-net --bench handshake`
//!
//! Both ends run in this process and share the machine's cores: latencies
//! and CPU include both sides of every handshake.

#[path = "../tests/common/classical.rs"]
mod classical;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pqnode_crypto::Identity;
use pqnode_net::tls::{Observed, TlsIdentity};
use pqnode_net::{Caller, Handler, HandlerError, Limits, NetConfig, Network, Protocol};
use quinn::{Endpoint, TransportConfig};
use tokio::net::UdpSocket;

const HANDSHAKES: usize = 200;
const WARMUP: usize = 10;
const BULK_BYTES: usize = 64 << 20;
const BULK_RUNS: usize = 5;
const MESSAGES: usize = 2000;
const ONE_WAY_DELAY: Duration = Duration::from_millis(25);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    println!("pqnode-net transport benchmark (both ends in one process)\n");
    let pq = Stack::pq(true);
    let classic = Stack::classical(true);

    println!(
        "## Handshake latency and CPU ({HANDSHAKES} sequential full handshakes each, loopback, alternating batches)"
    );
    let [pq_hs, cl_hs] = handshakes([&pq, &classic]).await;
    pq_hs.print(&pq.name);
    cl_hs.print(&classic.name);
    println!(
        "ratio PQ/classical: latency (server established, median) {:.2}x, CPU {:.2}x\n",
        pq_hs.server.median().as_secs_f64() / cl_hs.server.median().as_secs_f64(),
        pq_hs.cpu_per_handshake.as_secs_f64() / cl_hs.cpu_per_handshake.as_secs_f64()
    );

    println!(
        "## Bytes on the wire per handshake (UDP payload through a counting relay, until quiet)"
    );
    for mtud in [false, true] {
        let pq = Stack::pq(mtud);
        let classic = Stack::classical(mtud);
        let p = wire_bytes(&pq).await;
        let c = wire_bytes(&classic).await;
        let label = if mtud {
            "PLPMTUD on (our default)"
        } else {
            "PLPMTUD off"
        };
        println!("{label}:");
        p.print(&pq.name);
        c.print(&classic.name);
        println!(
            "ratio PQ/classical: {:.2}x",
            p.total() as f64 / c.total() as f64
        );
    }
    println!();

    println!(
        "## Round trips (relay adds {} ms each way, RTT {} ms)",
        ONE_WAY_DELAY.as_millis(),
        2 * ONE_WAY_DELAY.as_millis()
    );
    let rtt = 2.0 * ONE_WAY_DELAY.as_secs_f64();
    let (pq_first, pq_again, trace) = round_trips(&Stack::pq(false)).await;
    let (cl_first, cl_again, _) = round_trips(&Stack::classical(false)).await;
    for (label, (client, server)) in [
        ("PQ first contact", pq_first),
        ("PQ reconnect with NEW_TOKEN", pq_again),
        ("classical first contact", cl_first),
        ("classical reconnect", cl_again),
    ] {
        println!(
            "{label:<30} client established {:>6.1} ms = {:.2} RTT, server established {:>6.1} ms = {:.2} RTT",
            client.as_secs_f64() * 1e3,
            client.as_secs_f64() / rtt,
            server.as_secs_f64() * 1e3,
            server.as_secs_f64() / rtt
        );
    }
    println!("PQ first-contact datagram trace (ms since connect, direction, bytes):");
    for line in trace {
        println!("  {line}");
    }
    println!();

    println!(
        "## Bulk throughput (one connection, one stream, {} MiB, median of {BULK_RUNS}, alternating)",
        BULK_BYTES >> 20
    );
    let [p, c] = bulk([&Stack::pq(true), &Stack::classical(true)]).await;
    println!("{:<28} {p:>8.0} MB/s", pq.name);
    println!("{:<28} {c:>8.0} MB/s", classic.name);
    println!("ratio PQ/classical: {:.2}x\n", p / c);

    println!("## Network API round trips (PQ, one reused connection, {MESSAGES} sequential)");
    network_round_trips().await;
    println!();

    println!("## Handshakes per second one node sustains (PQ, 4 concurrent dialers, 3 s)");
    handshake_rate().await;
}

/// One side of a comparison: client and server configs plus the name to dial.
struct Stack {
    name: String,
    server: quinn::ServerConfig,
    client: quinn::ClientConfig,
    server_name: String,
}

fn transport(mtud: bool) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    if !mtud {
        t.mtu_discovery_config(None);
    }
    Arc::new(t)
}

impl Stack {
    fn pq(mtud: bool) -> Self {
        let server_identity = Identity::generate().expect("identity");
        let client_identity = Identity::generate().expect("identity");
        let server_tls = TlsIdentity::new(&server_identity).expect("tls");
        let client_tls = TlsIdentity::new(&client_identity).expect("tls");
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(
            server_tls
                .server_config(Observed::new())
                .expect("server config"),
        ));
        server.transport_config(transport(mtud));
        let mut client = quinn::ClientConfig::new(Arc::new(
            client_tls
                .client_config(Observed::new())
                .expect("client config"),
        ));
        client.transport_config(transport(mtud));
        Self {
            name: "PQ (MLKEM1024 + ML-DSA-87)".into(),
            server,
            client,
            server_name: pqnode_net::tls::server_name(Some(server_identity.node_id())),
        }
    }

    fn classical(mtud: bool) -> Self {
        let mut server = classical::server_config();
        server.transport_config(transport(mtud));
        let mut client = classical::client_config(rustls::crypto::aws_lc_rs::kx_group::X25519);
        client.transport_config(transport(mtud));
        Self {
            name: "classical (X25519 + Ed25519)".into(),
            server,
            client,
            server_name: "classical".into(),
        }
    }

    fn endpoints(&self) -> (Endpoint, Endpoint) {
        let server = Endpoint::server(self.server.clone(), localhost()).expect("server endpoint");
        let client = Endpoint::client(localhost()).expect("client endpoint");
        (server, client)
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Connects once; returns (client established, server established) since the start.
async fn handshake_once(
    stack: &Stack,
    client: &Endpoint,
    server: &Endpoint,
    to: SocketAddr,
) -> (Duration, Duration, quinn::Connection, quinn::Connection) {
    let start = Instant::now();
    let connecting = client
        .connect_with(stack.client.clone(), to, &stack.server_name)
        .expect("connect");
    let server_side = async {
        let incoming = server.accept().await.expect("incoming");
        let conn = incoming
            .accept()
            .expect("accept")
            .await
            .expect("server handshake");
        (start.elapsed(), conn)
    };
    let client_side = async {
        let conn = connecting.await.expect("client handshake");
        (start.elapsed(), conn)
    };
    let ((server_at, server_conn), (client_at, client_conn)) =
        tokio::join!(server_side, client_side);
    (client_at, server_at, client_conn, server_conn)
}

struct Samples(Vec<Duration>);

impl Samples {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }
    fn quantile(&self, q: f64) -> Duration {
        let v = self.sorted();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or_default()
    }
    fn median(&self) -> Duration {
        self.quantile(0.5)
    }
}

struct HandshakeFigures {
    client: Samples,
    server: Samples,
    cpu_per_handshake: Duration,
}

impl HandshakeFigures {
    fn print(&self, name: &str) {
        println!(
            "{name:<28} client connect median {:.3} ms; server established median {:.3} ms, p90 {:.3} ms; CPU/handshake (both ends) {:.3} ms",
            ms(self.client.median()),
            ms(self.server.median()),
            ms(self.server.quantile(0.9)),
            ms(self.cpu_per_handshake)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs both stacks in alternating batches, so a change in the machine's
/// load (other builds on a shared host) hits both sides of the ratio alike.
async fn handshakes(stacks: [&Stack; 2]) -> [HandshakeFigures; 2] {
    const BATCH: usize = 20;
    let endpoints = stacks.map(|stack| {
        let (server, client) = stack.endpoints();
        let to = server.local_addr().expect("addr");
        (server, client, to)
    });
    for (stack, (server, client, to)) in stacks.iter().zip(&endpoints) {
        for _ in 0..WARMUP {
            let (_, _, c, s) = handshake_once(stack, client, server, *to).await;
            c.close(0u32.into(), b"");
            s.close(0u32.into(), b"");
        }
    }
    let mut figures = [(); 2].map(|()| (Vec::new(), Vec::new(), Duration::ZERO));
    for _ in 0..HANDSHAKES / BATCH {
        for ((stack, (server, client, to)), (client_times, server_times, cpu)) in
            stacks.iter().zip(&endpoints).zip(figures.iter_mut())
        {
            let cpu_start = process_cpu();
            for _ in 0..BATCH {
                let (c_at, s_at, c, s) = handshake_once(stack, client, server, *to).await;
                client_times.push(c_at);
                server_times.push(s_at);
                c.close(0u32.into(), b"");
                s.close(0u32.into(), b"");
            }
            *cpu += process_cpu() - cpu_start;
        }
    }
    figures.map(|(client, server, cpu)| HandshakeFigures {
        cpu_per_handshake: cpu / client.len().max(1) as u32,
        client: Samples(client),
        server: Samples(server),
    })
}

/// A UDP relay between one client and one server that counts and optionally delays datagrams.
struct Relay {
    addr: SocketAddr,
    to_server: Counter,
    to_client: Counter,
    trace: Mutex<Vec<String>>,
    start: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Counter {
    bytes: AtomicU64,
    datagrams: AtomicU64,
}

impl Counter {
    fn add(&self, len: usize) {
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.datagrams.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.datagrams.load(Ordering::Relaxed),
        )
    }
}

impl Relay {
    async fn start(server: SocketAddr, delay: Duration) -> Arc<Relay> {
        let socket = Arc::new(UdpSocket::bind(localhost()).await.expect("relay socket"));
        let relay = Arc::new(Relay {
            addr: socket.local_addr().expect("relay addr"),
            to_server: Counter::default(),
            to_client: Counter::default(),
            trace: Mutex::default(),
            start: Mutex::default(),
        });
        let r = relay.clone();
        // One forwarder per direction keeps datagrams in order: a reordering
        // relay makes quinn drop Handshake packets that overtake the
        // ServerHello, which then look like extra round trips.
        let forwarder = |socket: Arc<UdpSocket>| {
            let (tx, mut rx) =
                tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>, SocketAddr)>();
            tokio::spawn(async move {
                while let Some((due, datagram, dest)) = rx.recv().await {
                    tokio::time::sleep_until(due.into()).await;
                    let _ = socket.send_to(&datagram, dest).await;
                }
            });
            tx
        };
        let towards_server = forwarder(socket.clone());
        let towards_client = forwarder(socket.clone());
        tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 65536];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let (dest, counter, arrow, queue) = if from == server {
                    match client {
                        Some(c) => (c, &r.to_client, "S->C", &towards_client),
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    (server, &r.to_server, "C->S", &towards_server)
                };
                counter.add(len);
                if let Some(start) = *r.start.lock().expect("start") {
                    r.trace.lock().expect("trace").push(format!(
                        "{:>7.1} {arrow} {len}",
                        start.elapsed().as_secs_f64() * 1e3
                    ));
                }
                let _ = queue.send((Instant::now() + delay, buf[..len].to_vec(), dest));
            }
        });
        relay
    }
}

struct WireBytes {
    to_server: (u64, u64),
    to_client: (u64, u64),
}

impl WireBytes {
    fn total(&self) -> u64 {
        self.to_server.0 + self.to_client.0
    }
    fn print(&self, name: &str) {
        println!(
            "  {name:<28} C->S {:>6} B / {:>2} datagrams, S->C {:>6} B / {:>2}, total {:>6} B",
            self.to_server.0,
            self.to_server.1,
            self.to_client.0,
            self.to_client.1,
            self.total()
        );
    }
}

async fn wire_bytes(stack: &Stack) -> WireBytes {
    let (server, client) = stack.endpoints();
    let relay = Relay::start(server.local_addr().expect("addr"), Duration::ZERO).await;
    let (_, _, c, s) = handshake_once(stack, &client, &server, relay.addr).await;
    // Let ACKs, HANDSHAKE_DONE, NEW_TOKEN and (if on) MTU probes settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let figures = WireBytes {
        to_server: relay.to_server.get(),
        to_client: relay.to_client.get(),
    };
    c.close(0u32.into(), b"");
    s.close(0u32.into(), b"");
    figures
}

type Times = (Duration, Duration);

/// First contact and a reconnect from the same client (which then holds a NEW_TOKEN).
async fn round_trips(stack: &Stack) -> (Times, Times, Vec<String>) {
    let (server, client) = stack.endpoints();
    let relay = Relay::start(server.local_addr().expect("addr"), ONE_WAY_DELAY).await;
    *relay.start.lock().expect("start") = Some(Instant::now());
    let (c1, s1, c, s) = handshake_once(stack, &client, &server, relay.addr).await;
    *relay.start.lock().expect("start") = None;
    let trace = std::mem::take(&mut *relay.trace.lock().expect("trace"));
    // Let NEW_TOKEN frames arrive before closing.
    tokio::time::sleep(4 * ONE_WAY_DELAY).await;
    c.close(0u32.into(), b"");
    s.close(0u32.into(), b"");
    let (c2, s2, c, s) = handshake_once(stack, &client, &server, relay.addr).await;
    c.close(0u32.into(), b"");
    s.close(0u32.into(), b"");
    ((c1, s1), (c2, s2), trace)
}

/// Median MB/s of each stack, runs alternating between the two.
async fn bulk(stacks: [&Stack; 2]) -> [f64; 2] {
    let endpoints = stacks.map(|stack| {
        let (server, client) = stack.endpoints();
        let to = server.local_addr().expect("addr");
        (server, client, to)
    });
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..BULK_RUNS {
        for ((stack, (server, client, to)), rates) in
            stacks.iter().zip(&endpoints).zip(rates.iter_mut())
        {
            rates.push(bulk_once(stack, client, server, *to).await);
        }
    }
    rates.map(|mut r| {
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    })
}

async fn bulk_once(stack: &Stack, client: &Endpoint, server: &Endpoint, to: SocketAddr) -> f64 {
    let (_, _, c, s) = handshake_once(stack, client, server, to).await;
    let sink = tokio::spawn(async move {
        let (mut send, mut recv) = s.accept_bi().await.expect("accept stream");
        let mut total = 0u64;
        while let Some(chunk) = recv.read_chunk(1 << 20, false).await.expect("read") {
            total += chunk.bytes.len() as u64;
        }
        send.write_all(&total.to_be_bytes()).await.expect("reply");
        send.finish().expect("finish");
        s
    });
    let chunk = Bytes::from(vec![0xa5u8; 1 << 20]);
    let start = Instant::now();
    let (mut send, mut recv) = c.open_bi().await.expect("open");
    for _ in 0..(BULK_BYTES >> 20) {
        send.write_chunk(chunk.clone()).await.expect("write");
    }
    send.finish().expect("finish");
    let reply = recv.read_to_end(8).await.expect("reply");
    let elapsed = start.elapsed();
    assert_eq!(reply, (BULK_BYTES as u64).to_be_bytes());
    let s = sink.await.expect("sink");
    c.close(0u32.into(), b"");
    s.close(0u32.into(), b"");
    BULK_BYTES as f64 / elapsed.as_secs_f64() / 1e6
}

/// The protocol the round-trip benchmark serves with [`Echo`].
const ECHO: Protocol = Protocol::new(1, "ECHO", 64 * 1024);

struct Echo;

impl Handler for Echo {
    async fn handle(&self, _caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        Ok(payload)
    }
}

fn bench_config() -> NetConfig {
    NetConfig {
        listen: localhost(),
        limits: Limits {
            max_per_ip: 1024,
            max_half_open: 256,
            max_connections: 4096,
            ..Limits::default()
        },
        peers: Vec::new(),
    }
}

async fn network_round_trips() {
    let a = Network::start(&Identity::generate().expect("id"), bench_config())
        .await
        .expect("start a");
    let b = Network::start(&Identity::generate().expect("id"), bench_config())
        .await
        .expect("start b");
    b.register(ECHO, Echo).expect("register");
    a.add_address(b.node_id(), b.local_addr().expect("addr"));
    let body = Bytes::from(vec![b'm'; 256]);
    for _ in 0..50 {
        a.request(b.node_id(), ECHO, body.clone())
            .await
            .expect("warm-up");
    }
    let mut request_times = Vec::new();
    for _ in 0..MESSAGES {
        let start = Instant::now();
        a.request(b.node_id(), ECHO, body.clone())
            .await
            .expect("request");
        request_times.push(start.elapsed());
    }
    let r = Samples(request_times);
    println!(
        "request echo (256 B): p50 {:.3} ms, p99 {:.3} ms",
        ms(r.median()),
        ms(r.quantile(0.99))
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn handshake_rate() {
    let server = Network::start(&Identity::generate().expect("id"), bench_config())
        .await
        .expect("start");
    let server_addr = server.local_addr().expect("addr");
    let server_name = pqnode_net::tls::server_name(Some(server.node_id()));
    let deadline = Instant::now() + Duration::from_secs(3);
    let cpu_start = process_cpu();
    let started = Instant::now();
    let mut dialers = Vec::new();
    for _ in 0..4 {
        let server_name = server_name.clone();
        dialers.push(tokio::spawn(async move {
            let identity = Identity::generate().expect("id");
            let tls = TlsIdentity::new(&identity).expect("tls");
            let config = quinn::ClientConfig::new(Arc::new(
                tls.client_config(Observed::new()).expect("client config"),
            ));
            let endpoint = Endpoint::client(localhost()).expect("endpoint");
            let mut done = 0u64;
            while Instant::now() < deadline {
                let conn = endpoint
                    .connect_with(config.clone(), server_addr, &server_name)
                    .expect("connect")
                    .await
                    .expect("handshake");
                conn.close(0u32.into(), b"");
                done += 1;
            }
            endpoint.wait_idle().await;
            done
        }));
    }
    let mut completed = 0;
    for d in dialers {
        completed += d.await.expect("dialer");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_start;
    let stats = server.stats();
    println!(
        "{completed} client handshakes in {elapsed:.1} s = {:.0}/s wall (server counted {} ok, {:?} failed)",
        completed as f64 / elapsed,
        stats.handshakes_ok,
        stats.handshakes_failed,
    );
    // Wall-clock rate depends on how much of the machine we got; per CPU
    // second it does not. Dialers and server share the process, so the
    // server alone (about half the work) would sustain roughly twice this.
    println!(
        "process CPU {:.2} s for both ends = {:.0} handshakes per CPU-second (both ends)",
        cpu.as_secs_f64(),
        completed as f64 / cpu.as_secs_f64()
    );
    server.shutdown().await;
}
