//! Node configuration: defaults < TOML file < `PQNODE_*` environment < flags.
//!
//! The file layer is plain serde with `deny_unknown_fields`, so a typo in a
//! config file is an error instead of a silently ignored setting. The
//! environment and flag layers come from clap (`#[arg(env = ...)]`), which
//! already gives flags precedence over the environment; both arrive as
//! `Option`s and override the file only when present.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The node's operating mode, reported as `production` in `/api/crypto/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Insecure setups are warned about, not refused.
    #[default]
    Development,
    /// Strict: insecure key files, world-writable data folders and an
    /// unauthenticated non-loopback API refuse to start.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Folder for keys, the database and the API token.
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub log: LogConfig,
    pub crypto: CryptoConfig,
    pub api: ApiConfig,
    pub signaling: SignalingConfig,
    pub p2p: P2pConfig,
    pub dht: DhtConfig,
    pub crdt: CrdtConfig,
    pub ai: AiConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogConfig {
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` itself wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CryptoConfig {
    /// `aws-lc-rs` (default) or `rustcrypto` (pure Rust).
    pub backend: String,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        Self {
            backend: "aws-lc-rs".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ApiConfig {
    pub addr: SocketAddr,
    /// Bearer token for mutating endpoints. When unset, one is generated at
    /// first start and kept in `<data_dir>/api.token` (mode 0600).
    pub token: Option<String>,
    /// Host names the API answers to besides IP addresses and `localhost`
    /// (the `Host` header check against DNS rebinding), e.g. the name a
    /// reverse proxy forwards.
    pub allowed_hosts: Vec<String>,
    pub tcp: ApiTcpLimits,
}

/// Limits on one TCP listener (the API port or the signaling port), applied when a
/// connection is accepted, before hyper reads it and before any WebSocket upgrade.
///
/// One type per listener (same fields, different default caps), so a table that sets only
/// some keys keeps that listener's defaults for the others. serde cannot derive for const
/// generics, hence the macro.
macro_rules! tcp_limits {
    ($(#[$doc:meta])* $name:ident, $max:expr, $per_ip:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(crate) struct $name {
            /// Open TCP connections on this port (upgraded WebSockets included). Lowered
            /// at start to fit the process's descriptor limit.
            pub(crate) max_connections: usize,
            /// Open TCP connections from one IP address.
            pub(crate) max_connections_per_ip: usize,
            /// Time allowed for a request's head to arrive (also the keep-alive pause
            /// allowed between requests).
            pub(crate) header_read_timeout_ms: u64,
            /// A connection with no request in progress and no bytes moving is closed
            /// after this.
            pub(crate) idle_timeout_ms: u64,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    max_connections: $max,
                    max_connections_per_ip: $per_ip,
                    header_read_timeout_ms: 5_000,
                    idle_timeout_ms: 30_000,
                }
            }
        }

        impl $name {
            pub(crate) fn caps(&self) -> crate::listen::Caps {
                crate::listen::Caps {
                    max_connections: self.max_connections,
                    max_connections_per_ip: self.max_connections_per_ip,
                }
            }

            pub(crate) fn set_caps(&mut self, caps: crate::listen::Caps) {
                self.max_connections = caps.max_connections;
                self.max_connections_per_ip = caps.max_connections_per_ip;
            }

            pub(crate) fn to_listen(&self) -> crate::listen::Limits {
                crate::listen::Limits {
                    caps: self.caps(),
                    header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
                    idle_timeout: Duration::from_millis(self.idle_timeout_ms),
                }
            }

            fn validate(&self, table: &str) -> anyhow::Result<()> {
                if self.max_connections == 0
                    || self.max_connections_per_ip == 0
                    || self.header_read_timeout_ms == 0
                    || self.idle_timeout_ms == 0
                {
                    bail!("every {table} setting must be at least 1");
                }
                Ok(())
            }
        }
    };
}

tcp_limits!(
    /// `[api.tcp]`. Loopback by default: every local client shares one IP, so the per-IP
    /// cap is the whole cap.
    ApiTcpLimits,
    1024,
    1024
);
tcp_limits!(
    /// `[signaling.tcp]`: both WebSocket endpoints' caps (10 000 each, 64 each per IP),
    /// plus room for plain HTTP (the demo page, PeerJS id requests).
    SignalingTcpLimits,
    20_480,
    160
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SignalingConfig {
    pub enabled: bool,
    pub addr: SocketAddr,
    /// STUN/TURN URLs handed to browsers in the `hello` message.
    pub ice_servers: Vec<String>,
    /// Open WebSocket connections per endpoint (native and PeerJS each).
    pub max_connections: usize,
    /// Open WebSocket connections from one IP address, per endpoint.
    pub max_connections_per_ip: usize,
    /// WebSocket ping interval; a client silent for two intervals is dropped.
    pub heartbeat_secs: u64,
    pub tcp: SignalingTcpLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct P2pConfig {
    pub enabled: bool,
    /// UDP address of the QUIC endpoint.
    pub addr: SocketAddr,
    /// Peers to connect to at start: `<node-id>@<host>:<port>`.
    pub peers: Vec<String>,
    pub limits: P2pLimits,
}

/// Caps on the QUIC endpoint (the transport's other limits keep their defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct P2pLimits {
    /// Open connections, both directions, before new ones are refused.
    pub max_connections: usize,
    /// Inbound handshakes in progress before new ones are refused.
    pub max_half_open: usize,
    /// Inbound connections from one IP address.
    pub max_per_ip: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout_ms: u64,
    /// Keep-alive interval on idle connections.
    pub keep_alive_ms: u64,
    /// Bound on one request to another node, dialing included.
    pub request_timeout_ms: u64,
}

impl Default for P2pLimits {
    fn default() -> Self {
        let net = pqnode_net::Limits::default();
        Self {
            max_connections: net.max_connections,
            max_half_open: net.max_half_open,
            max_per_ip: net.max_per_ip,
            idle_timeout_ms: net.idle_timeout.as_millis() as u64,
            keep_alive_ms: net.keep_alive.as_millis() as u64,
            request_timeout_ms: net.request_timeout.as_millis() as u64,
        }
    }
}

impl P2pLimits {
    /// The transport's limits with these caps applied.
    pub(crate) fn to_net(&self) -> pqnode_net::Limits {
        pqnode_net::Limits {
            max_connections: self.max_connections,
            max_half_open: self.max_half_open,
            max_per_ip: self.max_per_ip,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            keep_alive: Duration::from_millis(self.keep_alive_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            ..pqnode_net::Limits::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DhtConfig {
    pub enabled: bool,
    /// Bootstrap nodes: `<node-id>@<host>:<port>`, or `<host>:<port>` (unpinned).
    pub bootstrap: Vec<String>,
    pub refresh_interval_secs: u64,
    pub ping_interval_secs: u64,
    /// This node runs without other nodes by choice: an empty routing table is healthy.
    pub standalone: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CrdtConfig {
    pub enabled: bool,
    /// Who may open a document that has no policy of its own: `open` (anyone who reaches the
    /// signaling port) or `restricted` (holders of a capability token).
    pub default_access: pqnode_crdt_ws::Policy,
    /// Node ids whose capability tokens this node honours, besides its own.
    pub trusted_issuers: Vec<String>,
    /// How often the trusted issuers' revocations are read from the DHT.
    pub revocation_poll_secs: u64,
}

impl Default for CrdtConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_access: pqnode_crdt_ws::Policy::Open,
            trusted_issuers: Vec::new(),
            revocation_poll_secs: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AiConfig {
    pub enabled: bool,
    /// A model2vec-format static embedding model (safetensors + tokenizer.json); it wins over
    /// the bundled model.
    pub model_dir: Option<PathBuf>,
    /// Without `model_dir`, embed with the model compiled into the binary
    /// (`minilm-l6-static`, 128 dimensions); `false` leaves search BM25 only.
    pub bundled_model: bool,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model_dir: None,
            bundled_model: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ShutdownConfig {
    /// Upper bound on a graceful shutdown, in seconds.
    pub deadline_secs: u64,
    /// How long readiness stays false before components stop, so load
    /// balancers and peers notice before connections close.
    pub drain_ms: u64,
    /// After the drain, requests already in progress on the HTTP listeners get
    /// this long to finish; then every connection still open is closed by force.
    pub request_grace_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("pqnode-data"),
            mode: Mode::default(),
            log: LogConfig::default(),
            crypto: CryptoConfig::default(),
            api: ApiConfig::default(),
            signaling: SignalingConfig::default(),
            p2p: P2pConfig::default(),
            dht: DhtConfig::default(),
            crdt: CrdtConfig::default(),
            ai: AiConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            token: None,
            allowed_hosts: Vec::new(),
            tcp: Default::default(),
        }
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([0, 0, 0, 0], 3001)),
            ice_servers: Vec::new(),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            heartbeat_secs: 30,
            tcp: Default::default(),
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([0, 0, 0, 0], 4001)),
            peers: Vec::new(),
            limits: P2pLimits::default(),
        }
    }
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bootstrap: Vec::new(),
            refresh_interval_secs: 60,
            ping_interval_secs: 30,
            standalone: false,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            deadline_secs: 10,
            drain_ms: 0,
            request_grace_ms: 2_000,
        }
    }
}

impl Config {
    /// Reads a TOML file. A named file that does not exist is an error: a
    /// silently ignored config file is how production nodes end up on defaults.
    pub(crate) fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Checks the settings together; called once every layer is applied.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.crypto
            .backend
            .parse::<pqnode_crypto::Backend>()
            .map_err(|e| anyhow::anyhow!("crypto.backend: {e}"))?;
        if self.shutdown.deadline_secs == 0 {
            bail!("shutdown.deadline_secs must be at least 1");
        }
        if self.signaling.heartbeat_secs == 0 || self.signaling.max_connections == 0 {
            bail!("signaling.heartbeat_secs and signaling.max_connections must be at least 1");
        }
        self.api.tcp.validate("api.tcp")?;
        self.signaling.tcp.validate("signaling.tcp")?;
        if self.dht.refresh_interval_secs == 0 || self.dht.ping_interval_secs == 0 {
            bail!("dht.refresh_interval_secs and dht.ping_interval_secs must be at least 1");
        }
        if let Some(token) = &self.api.token
            && let Err(e) = crate::token::check(token)
        {
            bail!("api.token {e}: use a random string, e.g. `openssl rand -hex 24`");
        }
        for host in &self.api.allowed_hosts {
            check_allowed_host(host).map_err(|e| anyhow::anyhow!("api.allowed_hosts: {e}"))?;
        }
        if self.mode == Mode::Production
            && !self.api.addr.ip().is_loopback()
            && self.api.token.is_none()
        {
            bail!(
                "production mode refuses a non-loopback API address ({}) without an API token: \
                 set api.token / --api-token / PQNODE_API_TOKEN, or bind the API to 127.0.0.1",
                self.api.addr
            );
        }
        Ok(())
    }

    pub(crate) fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown.deadline_secs)
    }
}

/// The commented default configuration that `pqnode init` writes.
pub(crate) const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

/// Why an `api.allowed_hosts` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostEntryError {
    #[error(
        "{0:?} is not a host name: give the bare name (letters, digits, '-' and '.'), without scheme, port or path"
    )]
    NotAHostName(String),
}

/// Checks one `api.allowed_hosts` entry.
pub(crate) fn check_allowed_host(entry: &str) -> Result<(), HostEntryError> {
    let valid = !entry.is_empty()
        && entry.len() <= 253
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(HostEntryError::NotAHostName(entry.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_default_config_parses_to_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG_TOML).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<Config>("[api]\nadress = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn short_tokens_are_refused() {
        let mut config = Config::default();
        config.api.token = Some("short".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn whitespace_and_guessable_tokens_are_refused() {
        let mut config = Config::default();
        for weak in [" ".repeat(24), "aaaaaaaaaaaaaaaaaaaaaaaa".into()] {
            config.api.token = Some(weak);
            assert!(config.validate().is_err());
        }
        config.api.token = Some("3f9c1e7a0b5d42e8a6c1f0d9b7e2a4c6".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn allowed_hosts_must_be_host_names() {
        let mut config = Config::default();
        config.api.allowed_hosts = vec!["node.example.org".into()];
        assert!(config.validate().is_ok());
        for bad in [
            "",
            "http://node.example.org",
            "node.example.org:3000",
            "a b",
        ] {
            config.api.allowed_hosts = vec![bad.into()];
            assert!(config.validate().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn production_refuses_open_api_without_token() {
        let mut config = Config {
            mode: Mode::Production,
            ..Config::default()
        };
        config.api.addr = "0.0.0.0:3000".parse().unwrap();
        assert!(config.validate().is_err());
        config.api.token = Some("a-long-enough-random-token".into());
        assert!(config.validate().is_ok());
    }
}
