//! Acknowledged writes survive the process being killed mid-stream.
//!
//! The test re-runs its own binary as a child (the ignored `writer_child` test) that writes
//! and prints each key once `put` has returned, kills it with SIGKILL while it is still
//! writing, then reopens the file with full verification.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pqnode_store::{Store, StoreOptions, Table};

const CHILD_PATH_VAR: &str = "PQNODE_STORE_CRASH_CHILD_PATH";
const ACKS_BEFORE_KILL: u32 = 200;

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(key) = line.strip_prefix("ack ") {
            acknowledged.push(key.parse::<u32>().unwrap());
            if acknowledged.len() == ACKS_BEFORE_KILL as usize {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        acknowledged.len(),
        ACKS_BEFORE_KILL as usize,
        "the child stopped early"
    );

    let options = StoreOptions {
        verify_on_open: true,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&path, options).await.unwrap();
    for key in acknowledged {
        let value = store.get(Table::Messages, key.to_be_bytes()).await.unwrap();
        assert_eq!(
            value.as_deref(),
            Some(key.to_le_bytes().as_slice()),
            "key {key}"
        );
    }
}

/// The child half of `acknowledged_writes_survive_sigkill`; does nothing on its own.
#[tokio::test]
#[ignore = "run by acknowledged_writes_survive_sigkill as a child process"]
async fn writer_child() {
    let Some(path) = std::env::var_os(CHILD_PATH_VAR) else {
        return;
    };
    let store = Store::open(path).await.unwrap();
    // Writes until killed.
    for key in 0u32.. {
        store
            .put(
                Table::Messages,
                key.to_be_bytes(),
                key.to_le_bytes().to_vec(),
            )
            .await
            .unwrap();
        println!("ack {key}");
    }
}
