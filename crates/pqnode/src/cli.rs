//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use pqnode_crypto::PeerId;

use crate::api::dto::{Policy, Rights};
use crate::config::{Config, LogFormat, Mode};

/// A post-quantum peer-to-peer node.
///
/// With no subcommand, `pqnode` runs a node (same as `pqnode run`): a data
/// folder `./pqnode-data`, fresh ML-DSA-87 / ML-KEM-1024 keys on first start,
/// the HTTP API on 127.0.0.1:3000, signaling on 3001 and QUIC on UDP 4001.
#[derive(Debug, Parser)]
#[command(name = "pqnode", version, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a node (the default).
    Run(Box<RunArgs>),
    /// Write a commented default configuration file.
    Init(InitArgs),
    /// Print this node's id and key fingerprints (creates the keys if missing).
    Id(IdArgs),
    /// Send a text message to another node over its post-quantum connection.
    Send(SendArgs),
    /// List the messages this node received.
    Messages(MessagesArgs),
    /// Query a running node's DHT: nodes, lookups, records.
    Dht(DhtArgs),
    /// CRDT documents on a running node: list, read, history, delete, access, tokens.
    Doc(DocArgs),
    /// Search the text a running node holds (its documents and text indexed through the API).
    Search(SearchArgs),
    /// Check, compact or reset this node's database (while the node is stopped).
    Store(StoreArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
    #[command(flatten)]
    pub folder: DataDirArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Verify every page checksum and the schema; print what the store holds
    Check,
    /// Check, then shrink the file to what it holds
    Compact,
    /// Move the database aside (kept as `pqnode.redb.corrupt-<unix time>`) and create an
    /// empty one: the way back after a lost or damaged database
    Reset,
}

/// Which data folder an offline command works on.
#[derive(Debug, Args)]
pub(crate) struct DataDirArgs {
    /// TOML configuration file
    #[arg(long, global = true, env = "PQNODE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data folder [default: pqnode-data]
    #[arg(long, global = true, env = "PQNODE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DhtArgs {
    #[command(subcommand)]
    pub command: DhtCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DhtCommand {
    /// The routing table and its figures
    Nodes,
    /// Find the nodes closest to an id (40 hex characters)
    Lookup { id: String },
    /// Fetch the record under a key (40 hex characters)
    Get { key: String },
    /// Add a contact by hand, <node-id>@<host>:<port>: it must answer (needs the API token)
    Add { contact: String },
    /// Take a contact out of the routing table (needs the API token)
    Remove { id: String },
    /// Publish a record named NAME, signed by the node (needs the API token)
    Put {
        name: String,
        value: String,
        /// Lifetime in seconds
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// What to look for
    pub query: String,
    /// Most results
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Print the JSON answer
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DocArgs {
    #[command(subcommand)]
    pub command: DocCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DocCommand {
    /// Every document, with its size and version
    List,
    /// A document's figures, access policy and content as JSON
    Get { name: String },
    /// A text root of a document (Yjs `doc.getText(ROOT)`)
    Text {
        name: String,
        #[arg(long, default_value = "text")]
        root: String,
    },
    /// The versions kept of a document
    History { name: String },
    /// Delete a document (needs the API token)
    Delete { name: String },
    /// Set who may open a document: open, or restricted to capability tokens and listed
    /// peers (needs the API token)
    Access {
        name: String,
        policy: Policy,
        /// A peer who may open it, as PEER_ID or PEER_ID:read (default write); repeat for
        /// several. Replaces the document's list.
        #[arg(long = "peer", value_name = "PEER_ID[:RIGHTS]", value_parser = listed_peer)]
        peers: Vec<(PeerId, Rights)>,
        /// Remove every listed peer
        #[arg(long, conflicts_with = "peers")]
        clear_peers: bool,
    },
    /// Issue a capability token for /sync/NAME?token=... (needs the API token)
    Token {
        name: String,
        #[arg(long, value_enum, default_value_t = Rights::Write)]
        rights: Rights,
        /// Lifetime in seconds
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Revoke a capability token by id; its live sessions close (needs the API token)
    Revoke { id: String },
}

/// `--peer PEER_ID[:read|:write]`: a peer listed for a document, with its rights (write
/// when none is given).
fn listed_peer(text: &str) -> Result<(PeerId, Rights), String> {
    let (id, rights) = match text.split_once(':') {
        Some((id, "read")) => (id, Rights::Read),
        Some((id, "write")) => (id, Rights::Write),
        Some(_) => return Err("rights are read or write".to_owned()),
        None => (text, Rights::Write),
    };
    let id = id.parse().map_err(|e| format!("not a peer id: {e}"))?;
    Ok((id, rights))
}

/// How a CLI command reaches a running node's HTTP API.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The node's API base URL [default: from the config's api.addr, http://127.0.0.1:3000]
    #[arg(long, global = true, env = "PQNODE_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// API token [default: read from <data-dir>/api.token]
    #[arg(
        long,
        env = "PQNODE_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// TOML configuration file of the node
    #[arg(long, global = true, env = "PQNODE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The node's data folder [default: pqnode-data]
    #[arg(long, global = true, env = "PQNODE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long to wait for a node that is still starting: for its API to be
    /// ready, for its token file, and (`send`) for the receiving node to be
    /// reachable. 0 fails at once; at most a day.
    #[arg(
        long,
        global = true,
        env = "PQNODE_WAIT",
        value_name = "SECS",
        default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(..=86_400)
    )]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The receiving node's id (40 hex characters)
    pub node_id: String,
    /// The message text
    pub text: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MessagesArgs {
    /// How many of the newest messages to show
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Settings for a running node. Each flag has a `PQNODE_*` environment twin;
/// flags win over the environment, which wins over the config file.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RunArgs {
    /// TOML configuration file (see `pqnode init`). A named file must exist.
    #[arg(long, env = "PQNODE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder for keys, the database and the API token [default: pqnode-data]
    #[arg(long, env = "PQNODE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// HTTP API address [default: 127.0.0.1:3000]
    #[arg(long, env = "PQNODE_API_ADDR", value_name = "ADDR")]
    pub api_addr: Option<SocketAddr>,

    /// Bearer token for mutating API endpoints (at least 16 characters)
    #[arg(
        long,
        env = "PQNODE_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,

    /// WebRTC signaling WebSocket address [default: 0.0.0.0:3001]
    #[arg(long, env = "PQNODE_SIGNALING_ADDR", value_name = "ADDR")]
    pub signaling_addr: Option<SocketAddr>,

    /// QUIC (UDP) address for node-to-node traffic [default: 0.0.0.0:4001]
    #[arg(long, env = "PQNODE_P2P_ADDR", value_name = "ADDR")]
    pub p2p_addr: Option<SocketAddr>,

    /// Peer to connect to at start, `<node-id>@<host>:<port>` (repeatable)
    #[arg(long, env = "PQNODE_PEERS", value_delimiter = ',', value_name = "PEER")]
    pub peer: Vec<String>,

    /// DHT bootstrap node, `<node-id>@<host>:<port>` or `<host>:<port>` (repeatable)
    #[arg(
        long,
        env = "PQNODE_BOOTSTRAP",
        value_delimiter = ',',
        value_name = "NODE"
    )]
    pub bootstrap: Vec<String>,

    /// Post-quantum implementation: aws-lc-rs or rustcrypto [default: aws-lc-rs]
    #[arg(long, env = "PQNODE_CRYPTO_BACKEND", value_name = "NAME")]
    pub crypto_backend: Option<String>,

    /// Operating mode [default: development]
    #[arg(long, env = "PQNODE_MODE", value_enum)]
    pub mode: Option<Mode>,

    /// Log format [default: text]
    #[arg(long, env = "PQNODE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, `RUST_LOG` syntax [default: info]; `RUST_LOG` wins when set
    #[arg(long, env = "PQNODE_LOG", value_name = "FILTER")]
    pub log_filter: Option<String>,

    /// Upper bound on graceful shutdown, in seconds [default: 10]
    #[arg(
        long = "shutdown-deadline",
        env = "PQNODE_SHUTDOWN_DEADLINE",
        value_name = "SECS"
    )]
    pub shutdown_deadline_secs: Option<u64>,

    /// Do not run the signaling server
    #[arg(long, env = "PQNODE_NO_SIGNALING")]
    pub no_signaling: bool,

    /// Do not run the QUIC endpoint (and so no DHT)
    #[arg(long, env = "PQNODE_NO_P2P")]
    pub no_p2p: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Where to write the file
    #[arg(default_value = "pqnode.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    pub folder: DataDirArgs,
    /// Print JSON instead of text
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print only the node id, for scripts: `A=$(pqnode id --quiet)`
    #[arg(long, short)]
    pub quiet: bool,
}

impl RunArgs {
    /// The effective configuration: defaults < TOML file < `PQNODE_*` < flags.
    pub(crate) fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.apply_to(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Overrides `config` with every flag (or `PQNODE_*` variable) that was given.
    fn apply_to(&self, config: &mut Config) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut config.data_dir, &self.data_dir);
        set(&mut config.mode, &self.mode);
        set(&mut config.log.format, &self.log_format);
        set(&mut config.log.filter, &self.log_filter);
        set(&mut config.api.addr, &self.api_addr);
        set(&mut config.crypto.backend, &self.crypto_backend);
        if self.api_token.is_some() {
            config.api.token.clone_from(&self.api_token);
        }
        set(&mut config.signaling.addr, &self.signaling_addr);
        set(&mut config.p2p.addr, &self.p2p_addr);
        set(
            &mut config.shutdown.deadline_secs,
            &self.shutdown_deadline_secs,
        );
        if !self.peer.is_empty() {
            config.p2p.peers.clone_from(&self.peer);
        }
        if !self.bootstrap.is_empty() {
            config.dht.bootstrap.clone_from(&self.bootstrap);
        }
        if self.no_signaling {
            config.signaling.enabled = false;
        }
        if self.no_p2p {
            config.p2p.enabled = false;
        }
    }
}

impl DataDirArgs {
    /// The configuration an offline command works with: the file's, if any, and the folder.
    pub(crate) fn load_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_flags_mean_run() {
        let cli = Cli::try_parse_from(["pqnode", "--data-dir", "d"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.data_dir, Some(PathBuf::from("d")));
    }
}
