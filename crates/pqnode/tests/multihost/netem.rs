//! A userspace netem: this kernel has no `sch_netem`, so the router namespace sends every
//! forwarded packet to a TUN device, and two threads here read each one, drop it with the
//! link's loss probability (or because a partition separates its ends), hold it for the
//! link's delay and write it back, after which the kernel routes it on.
//!
//! A packet from host a to host b crosses both hosts' access links: it is held
//! `delay(a) + delay(b)` and survives with probability `(1 - loss(a)) × (1 - loss(b))`.
//! Every packet of a pair gets the same delay, so the netem never reorders (no jitter).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::Host;

/// One host's access link to the router.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    /// One-way delay added to every packet to or from the host.
    pub(crate) delay: Duration,
    /// Probability that a packet to or from the host is lost on this link.
    pub(crate) loss: f64,
}

/// Packet counts since the netem started.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) forwarded: u64,
    /// Dropped at random (the links' loss).
    pub(crate) lost: u64,
    /// Dropped because a partition separated source and destination.
    pub(crate) cut: u64,
}

/// A packet held until `due`; `seq` keeps equal deadlines in arrival order.
type Held = Reverse<(Instant, u64, Vec<u8>)>;

struct Shared {
    tun: File,
    stop: AtomicBool,
    /// Bit i set: host i is on the far side of the partition; 0: no partition.
    cut_off: AtomicU32,
    /// Indexed by host number (the address's third octet); index 0 is unused.
    links: Vec<Option<Link>>,
    queue: Mutex<BinaryHeap<Held>>,
    wake: Condvar,
    forwarded: AtomicU64,
    lost: AtomicU64,
    cut: AtomicU64,
}

/// The running netem; dropping it stops its threads and closes the TUN.
pub(crate) struct Netem {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Netem {
    /// Creates TUN device `name` in the calling thread's namespace and starts relaying.
    pub(crate) fn open(name: &str, hosts: &[Host]) -> Result<Self, String> {
        let tun = open_tun(name).map_err(|e| format!("TUN device {name}: {e}"))?;
        let mut links = vec![None; 256];
        for host in hosts {
            links[usize::from(host.index)] = Some(host.link);
        }
        let shared = Arc::new(Shared {
            tun,
            stop: AtomicBool::new(false),
            cut_off: AtomicU32::new(0),
            links,
            queue: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
            forwarded: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            cut: AtomicU64::new(0),
        });
        let seed = std::process::id() as u64 ^ nanos_now();
        let reader = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("netem-read".into())
                .spawn(move || read_loop(&shared, seed))
                .map_err(|e| e.to_string())?
        };
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("netem-write".into())
                .spawn(move || write_loop(&shared))
                .map_err(|e| e.to_string())?
        };
        Ok(Self {
            shared,
            threads: vec![reader, writer],
        })
    }

    /// Cuts `hosts` off from every other host, both ways, from the next packet on.
    pub(crate) fn partition(&self, hosts: &[u8]) {
        let mask = hosts.iter().fold(0u32, |m, &h| m | (1 << h));
        self.shared.cut_off.store(mask, Ordering::SeqCst);
    }

    /// Ends the partition.
    pub(crate) fn heal(&self) {
        self.shared.cut_off.store(0, Ordering::SeqCst);
    }

    pub(crate) fn counters(&self) -> Counters {
        Counters {
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
            lost: self.shared.lost.load(Ordering::Relaxed),
            cut: self.shared.cut.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Netem {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Opens `/dev/net/tun` and attaches it to a new TUN device (`IFF_TUN | IFF_NO_PI`: plain IP
/// packets, no extra header) in the calling thread's network namespace.
fn open_tun(name: &str) -> std::io::Result<File> {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: `ifreq` is plain old data (a name array and a union of integers and plain
    // structs), for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request
        .ifr_name
        .iter_mut()
        .take(libc::IFNAMSIZ - 1)
        .zip(name.bytes())
    {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads (and may write back the name into) the `ifreq` we pass, which
    // lives for the whole call; the fd is the open TUN clone device.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tun)
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// splitmix64: enough randomness for loss decisions, no dependency.
fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The host number of an address in 10.77.0.0/16 (its third octet).
fn host_of(addr: &[u8]) -> Option<u8> {
    (addr[0] == 10 && addr[1] == 77).then_some(addr[2])
}

fn read_loop(shared: &Shared, seed: u64) {
    let mut rng = seed;
    let mut buf = vec![0u8; 65536];
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: shared.tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call. A timeout lets the loop
        // notice `stop`.
        if unsafe { libc::poll(&mut poll, 1, 100) } <= 0 {
            continue;
        }
        let n = match (&shared.tun).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("netem: reading the TUN failed: {e}");
                return;
            }
        };
        let packet = &buf[..n];
        // IPv4 only (IPv6 is disabled in every namespace); anything else is dropped.
        if n < 20 || packet[0] >> 4 != 4 {
            continue;
        }
        let (Some(src), Some(dst)) = (host_of(&packet[12..16]), host_of(&packet[16..20])) else {
            continue;
        };
        let cut_off = shared.cut_off.load(Ordering::SeqCst);
        if ((cut_off >> src) ^ (cut_off >> dst)) & 1 == 1 {
            shared.cut.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (Some(a), Some(b)) = (
            shared.links[usize::from(src)],
            shared.links[usize::from(dst)],
        ) else {
            continue;
        };
        let survive = (1.0 - a.loss) * (1.0 - b.loss);
        if next_random(&mut rng) >= survive {
            shared.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        seq += 1;
        let due = Instant::now() + a.delay + b.delay;
        shared
            .queue
            .lock()
            .expect("netem queue")
            .push(Reverse((due, seq, packet.to_vec())));
        shared.wake.notify_one();
    }
}

fn write_loop(shared: &Shared) {
    let mut queue = shared.queue.lock().expect("netem queue");
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = match queue.peek() {
            Some(Reverse((due, _, _))) if *due <= now => {
                let Some(Reverse((_, _, packet))) = queue.pop() else {
                    continue;
                };
                drop(queue);
                // A full TUN queue drops the packet, as a congested link would.
                if (&shared.tun).write(&packet).is_ok() {
                    shared.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                queue = shared.queue.lock().expect("netem queue");
                continue;
            }
            Some(Reverse((due, _, _))) => (*due - now).min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        queue = shared
            .wake
            .wait_timeout(queue, wait)
            .expect("netem queue")
            .0;
    }
}
