//! The README's two-node example, pasted into bash as a newcomer would.
//!
//! The block is taken from README.md at test time, so the README cannot
//! drift from what works. It runs in an empty folder with only the built
//! `pqnode` on `PATH`, under `set -e`, and a trap stops the nodes it
//! started however it ends.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_for_tcp_and_udp, free_port};

/// Generous: two debug-build nodes start on a loaded 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(90);

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first fenced block that contains `pqnode send` (the block the
/// before-stop hook pastes too).
fn example_block(readme: &str) -> String {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    blocks
        .into_iter()
        .find(|b| b.contains("pqnode send"))
        .expect("README.md has a fenced block with `pqnode send`")
}

/// The message text: the quoted argument of `pqnode send` that is not the id.
fn message_text(block: &str) -> String {
    let line = block
        .lines()
        .find(|l| l.contains("pqnode send"))
        .unwrap_or_default();
    line.split('"')
        .skip(1)
        .step_by(2)
        .find(|quoted| !quoted.starts_with('$'))
        .expect("`pqnode send` has a quoted message")
        .to_owned()
}

/// Every `127.0.0.1:PORT` in the block.
fn ports(block: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = block
        .split("127.0.0.1:")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The block verbatim when its fixed ports are free; otherwise the same
/// block with each port replaced by a free one, so a busy machine (another
/// node on 3000, a parallel test) does not fail the test.
fn runnable(block: &str) -> String {
    let busy: Vec<u16> = ports(block)
        .into_iter()
        .filter(|&p| !free_for_tcp_and_udp(p))
        .collect();
    if busy.is_empty() {
        return block.to_owned();
    }
    eprintln!("ports {busy:?} are busy: running the README block on free ports instead");
    let new: std::collections::HashMap<u16, u16> =
        ports(block).into_iter().map(|p| (p, free_port())).collect();
    // One pass over the text, so a new port is never rewritten again.
    let mut parts = block.split("127.0.0.1:");
    let mut text = parts.next().unwrap_or_default().to_owned();
    for rest in parts {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let port = digits.parse().ok().and_then(|p: u16| new.get(&p).copied());
        match port {
            Some(port) => text.push_str(&format!("127.0.0.1:{port}{}", &rest[digits.len()..])),
            None => text.push_str(&format!("127.0.0.1:{rest}")),
        }
    }
    text
}

/// A folder holding `pqnode` and the few tools the test's own check after
/// the block uses, and nothing else: as `PATH`, it proves the example needs
/// no other program (no `jq`, no `curl`).
fn minimal_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(common::BIN, bin.join("pqnode")).unwrap();
    for tool in ["grep", "seq", "sleep"] {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    bin.display().to_string()
}

/// `tool` on the test's own `PATH`.
fn which(tool: &str) -> std::path::PathBuf {
    let system = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&system)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

/// Runs `script` with bash in `dir/work`, in its own process group, killing
/// the whole group (nodes included) if it outlives `TIMEOUT`.
fn bash(script: &str, dir: &Path) -> Output {
    let path = minimal_path(dir);
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    // Found on our PATH: the child's PATH has no bash in it.
    let mut cmd = Command::new(which("bash"));
    cmd.arg("-c")
        .arg(script)
        .current_dir(&work)
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        // Files, not pipes: nobody reads a pipe until bash exits, and the
        // nodes' logs must never block on a full one.
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .process_group(0);
    // A newcomer's shell has no pqnode settings; the test's may.
    for (key, _) in std::env::vars() {
        if key.starts_with("PQNODE_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("spawn bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            // The trap has stopped the nodes.
            break status;
        }
        if started.elapsed() > TIMEOUT {
            // bash is not reaped yet, so its id still names our group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            break child.wait().expect("wait for bash");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
    Output {
        status,
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}

#[test]
fn the_two_node_example_works_when_pasted() {
    let block = example_block(&readme());
    let text = message_text(&block);
    let last = block
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        last.starts_with("pqnode messages"),
        "the example should end by listing node a's messages, ends with: {last}"
    );
    let block = runnable(&block);
    let last = block
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    // After the block, and before the trap stops the nodes: node a lists
    // the message. Asked again for a few seconds because a node
    // acknowledges a message before its store has committed it.
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\nset -e\n{block}\n\
         for _ in $(seq 50); do\n  \
           if {last} | grep -qF -- '{text}'; then exit 0; fi\n  sleep 0.1\n\
         done\n\
         echo 'node a does not list the message' >&2\nexit 1\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = bash(&script, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README example failed ({}):\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(stdout.contains("delivered to"), "{stdout}");
    assert!(
        stdout.contains(&text),
        "node a did not list {text:?}:\n{stdout}"
    );
}

#[test]
fn a_client_command_waits_a_bounded_time_and_says_for_what() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = Command::new(common::BIN)
        .args(["messages", "--wait", "1", "--api-url", &url])
        .env_remove("PQNODE_API_TOKEN")
        .output()
        .unwrap();
    let waited = started.elapsed();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("not ready"), "{err}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[test]
fn id_quiet_prints_only_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args(["id", "--quiet", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap();
    let id = id.strip_suffix('\n').expect("one line");
    assert_eq!(id.len(), 40, "{id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id:?}");
}
