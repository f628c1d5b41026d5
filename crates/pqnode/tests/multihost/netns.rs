//! Several hosts on one machine: a network namespace per host, all joined by veth pairs to
//! one router namespace whose forwarded traffic passes through the userspace netem
//! ([`super::netem`]). Built with `ip` as root, torn down on drop even when the test fails.
//!
//! ```text
//!   host 1 (10.77.1.2) ──veth── 10.77.1.1 ┐
//!   host 2 (10.77.2.2) ──veth── 10.77.2.1 ├ router ── `ip rule iif hN lookup 100`
//!   ...                                   │            table 100: default dev netem0 (TUN)
//!   host 5 (10.77.5.2) ──veth── 10.77.5.1 ┘            a packet written back to the TUN is
//!                                                       routed on by the main table
//! ```
//!
//! The test itself (its HTTP client) lives in the router namespace: packets the router
//! originates or receives for itself never match the `iif` rules (the `local` table is looked
//! up first), so the control plane is neither delayed, lossy nor partitioned; only
//! host-to-host traffic is.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use super::netem::{Link, Netem};

/// Every name this test gives a namespace starts with this, then the test process's pid.
const PREFIX: &str = "pqmh-";
/// The TUN device in the router namespace.
const TUN: &str = "netem0";
/// The policy-routing table that sends forwarded packets to the TUN.
const TABLE: &str = "100";

/// One host: its namespace, its address and the link that joins it to the router.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// 1-based, as in the test's figures; also the third octet of the address.
    pub(crate) index: u8,
    pub(crate) ns: String,
    pub(crate) addr: Ipv4Addr,
    pub(crate) link: Link,
}

/// The namespaces, links and the netem of one test run; all removed on drop.
pub(crate) struct Topology {
    pub(crate) router: String,
    pub(crate) hosts: Vec<Host>,
    pub(crate) netem: Option<Netem>,
    /// Namespaces created so far, removed on drop (even after a failed setup).
    created: Vec<String>,
}

/// Whether this process can build namespaces and a TUN device; why not otherwise.
pub(crate) fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, veth pairs, TUN)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("the `ip` command (iproute2) is missing".into()),
    }
}

/// Runs `ip args`; the error carries the command and its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Sets sysctls inside namespace `ns` (`key=value` each).
fn sysctl(ns: &str, settings: &[&str]) -> Result<String, String> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-qw"];
    args.extend_from_slice(settings);
    ip(&args)
}

/// Moves the calling thread (only this thread) into namespace `ns`. Sockets and devices it
/// creates from then on, and processes it spawns, live in that namespace.
pub(crate) fn enter(ns: &str) -> std::io::Result<()> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns with a valid namespace fd and CLONE_NEWNET changes only the calling
    // thread's network namespace; no memory is involved.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs `f` on a fresh thread inside namespace `ns` and returns what it returns (a panic in
/// `f` is resumed here). The caller's thread never changes namespace.
pub(crate) fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| {
                enter(ns).unwrap_or_else(|e| panic!("cannot enter namespace {ns}: {e}"));
                f()
            })
            .join();
        joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Removes namespaces left by earlier runs whose test process is gone (killed by a timeout,
/// say), with whatever still runs inside them: only namespaces this test names.
fn remove_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            remove_namespace(name);
        }
    }
}

/// Kills what still runs in `ns` (only processes this test started land there) and deletes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill has no memory preconditions; the pid is one the kernel listed in
            // a namespace only this test creates.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    // A namespace whose processes are still exiting can refuse once; try again briefly.
    for _ in 0..20 {
        if ip(&["netns", "del", ns]).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("multihost: could not delete namespace {ns}");
}

impl Topology {
    /// Builds the router and one host per link, with the netem between them.
    pub(crate) fn create(links: &[Link]) -> Result<Self, String> {
        remove_stale();
        let base = format!("{PREFIX}{}", std::process::id());
        let mut topology = Self {
            router: format!("{base}-r"),
            hosts: Vec::new(),
            netem: None,
            created: Vec::new(),
        };
        // On an error, `topology` is dropped and removes what was made.
        topology.build(&base, links)?;
        Ok(topology)
    }

    fn build(&mut self, base: &str, links: &[Link]) -> Result<(), String> {
        let router = self.router.clone();
        self.add_namespace(&router)?;
        sysctl(
            &router,
            &[
                "net.ipv4.ip_forward=1",
                // Packets written back to the TUN arrive on it but came from a veth:
                // reverse-path filtering would drop them.
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0",
            ],
        )?;
        for (i, link) in links.iter().enumerate() {
            let index = u8::try_from(i + 1).map_err(|_| "too many hosts")?;
            let ns = format!("{base}-h{index}");
            self.add_namespace(&ns)?;
            let addr = Ipv4Addr::new(10, 77, index, 2);
            let gateway = Ipv4Addr::new(10, 77, index, 1);
            let router_side = format!("h{index}");
            // Both ends are created directly inside their namespaces: no name is ever taken
            // in the root namespace, so parallel runs cannot collide.
            ip(&[
                "link",
                "add",
                "name",
                "eth0",
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &router_side,
                "netns",
                &router,
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{gateway}/24"),
                "dev",
                &router_side,
            ])?;
            ip(&["-n", &router, "link", "set", &router_side, "up"])?;
            self.hosts.push(Host {
                index,
                ns,
                addr,
                link: *link,
            });
        }
        let netem = in_ns(&router, || Netem::open(TUN, &self.hosts))?;
        self.netem = Some(netem);
        ip(&["-n", &router, "link", "set", TUN, "up"])?;
        ip(&[
            "-n", &router, "route", "add", "default", "dev", TUN, "table", TABLE,
        ])?;
        // Only now does host traffic take the TUN: forwarded packets from each host's link.
        for host in &self.hosts {
            ip(&[
                "-n",
                &router,
                "rule",
                "add",
                "iif",
                &format!("h{}", host.index),
                "lookup",
                TABLE,
                "pref",
                "100",
            ])?;
        }
        Ok(())
    }

    fn add_namespace(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // IPv6 is not used; without it no router solicitations wander into the netem.
        sysctl(
            ns,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )
        .map(drop)
        .or_else(|e| {
            // A kernel without IPv6 has nothing to disable.
            if e.contains("No such file") {
                Ok(())
            } else {
                Err(e)
            }
        })
    }

    pub(crate) fn netem(&self) -> &Netem {
        self.netem.as_ref().expect("the netem runs once built")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // The netem first: its threads hold the TUN open.
        drop(self.netem.take());
        for ns in self.created.iter().rev() {
            remove_namespace(ns);
        }
    }
}
