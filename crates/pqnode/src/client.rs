//! CLI commands that talk to a running node through its HTTP API.
//!
//! A command may run right after the node was launched (`pqnode & pqnode
//! send ...`), so before its request it waits, up to `--wait` seconds, for
//! the node's `/readyz` and, when it needs one, for the token file the node
//! writes while it starts. Every wait ends with an error naming what was
//! missing.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::dto::{
    AddContact, Delivered, DocText, ErrorBody, IssueToken, MessagePage, PublishRecord, Readiness,
    SearchResults, SendMessage, SetAccess,
};
use crate::cli::{
    ClientArgs, DhtArgs, DhtCommand, DocArgs, DocCommand, MessagesArgs, SearchArgs, SendArgs,
};
use crate::config::Config;

/// How often a waiting command asks again.
const POLL: Duration = Duration::from_millis(100);
/// Between two attempts to send to a node that is not reachable yet; the
/// node's own dial backoff starts at 250 ms.
const SEND_RETRY: Duration = Duration::from_millis(250);
/// One readiness probe; a node that takes longer is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// The end of `--wait`, shared by every wait of this command.
    deadline: Instant,
    wait: Duration,
}

/// An error the node's API answered with (its JSON error body).
#[derive(Debug)]
struct ApiFailure {
    status: StatusCode,
    code: String,
    message: String,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (HTTP {})", self.code, self.message, self.status)
    }
}

impl std::error::Error for ApiFailure {}

/// Whether a command needs the API token, or sends it only when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    /// Changes state: waits for the node's token file if none was given.
    Required,
    /// Reads: public in development, private in production.
    IfAvailable,
}

impl ApiClient {
    /// Resolves the node's URL and token, and waits until the node is ready.
    fn connect(args: &ClientArgs, token_use: TokenUse) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &args.data_dir {
            config.data_dir.clone_from(dir);
        }
        let base = match &args.api_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = config.api.addr;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let wait = Duration::from_secs(args.wait);
        let mut client = Self {
            base,
            token: None,
            http: reqwest::Client::new(),
            runtime,
            deadline: Instant::now() + wait,
            wait,
        };
        client.wait_until_ready()?;
        // Today a node writes its token before its API listens, so after
        // readiness the file is there; waiting for it as well keeps the CLI
        // right should the start-up order change.
        client.token = match (&args.api_token, &config.api.token, token_use) {
            (Some(t), _, _) | (None, Some(t), _) => Some(t.clone()),
            (None, None, TokenUse::Required) => Some(client.wait_for_token(&config.data_dir)?),
            // The file is there if this is the node's data folder; if not, a
            // development node answers reads without it, and a production
            // node's TOKEN_REQUIRED says what to pass.
            (None, None, TokenUse::IfAvailable) => {
                crate::token::read(&config.data_dir).ok().flatten()
            }
        };
        Ok(client)
    }

    /// Polls `/readyz` until it answers 200 or the deadline passes.
    fn wait_until_ready(&self) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base);
        loop {
            // Built inside the runtime: the request's timeout needs its timer.
            let probe = self.runtime.block_on(async {
                let response = self.http.get(&url).timeout(PROBE_TIMEOUT).send().await?;
                let status = response.status();
                let body = response.json::<Readiness>().await.ok();
                Ok::<_, reqwest::Error>((status, body))
            });
            let not_yet = match probe {
                Ok((status, _)) if status.is_success() => return Ok(()),
                Ok((status, body)) if status == StatusCode::SERVICE_UNAVAILABLE => {
                    let reason = body
                        .and_then(|b| b.reason)
                        .unwrap_or_else(|| "not ready".to_owned());
                    // A node on its way out will not become ready again.
                    if reason == "shutting down" {
                        bail!("the node at {} is shutting down", self.base);
                    }
                    reason
                }
                // Something answers, but not a pqnode API: waiting will not help.
                Ok((status, _)) => bail!(
                    "{url} answered HTTP {status}: is {} a pqnode API? (see --api-url)",
                    self.base
                ),
                Err(e) => format!("{:#}", anyhow::Error::new(e)),
            };
            if Instant::now() >= self.deadline {
                bail!(
                    "the node's API at {} was not ready after waiting {} s ({not_yet}): \
                     start the node first, or point --api-url at it",
                    self.base,
                    self.wait.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The token the node writes into its data folder while it starts.
    fn wait_for_token(&self, data_dir: &Path) -> anyhow::Result<String> {
        loop {
            if let Some(token) = crate::token::read(data_dir)? {
                return Ok(token);
            }
            if Instant::now() >= self.deadline {
                bail!(
                    "no API token at {} after waiting {} s: a node started with --data-dir {} \
                     and no configured token writes it there (start that node, give its \
                     --data-dir, or pass --api-token)",
                    crate::token::token_path(data_dir).display(),
                    self.wait.as_secs(),
                    data_dir.display()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `request` and reads the answer as `T`, or the API's error as an [`ApiFailure`].
    fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach the node at {}", self.base))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .with_context(|| format!("the node at {} stopped answering", self.base))?;
            if !status.is_success() {
                let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                    Ok(ErrorBody { error }) => (error.code, error.message),
                    Err(_) => ("ERROR".to_owned(), "no message".to_owned()),
                };
                let failure = ApiFailure {
                    status,
                    code,
                    message,
                };
                if status == reqwest::StatusCode::UNAUTHORIZED {
                    return Err(anyhow::Error::new(failure).context(
                        "the node wants its API token: pass the node's --data-dir \
                         (the token is in <data-dir>/api.token) or --api-token",
                    ));
                }
                return Err(failure.into());
            }
            serde_json::from_slice(&bytes)
                .context("the node answered with something other than the JSON expected")
        })
    }
}

/// Sends and prints the node's confirmation. Only a 200 from the node,
/// which it gives once the receiver has the message on disk, is reported as
/// delivered.
pub(crate) fn send(args: SendArgs) -> anyhow::Result<()> {
    let client = ApiClient::connect(&args.client, TokenUse::Required)?;
    let url = format!("{}/api/messages", client.base);
    let message = SendMessage {
        to: args.node_id.clone(),
        body: args.text,
    };
    let delivered: Delivered = loop {
        let request = client.http.post(&url).json(&message);
        match client.call(request) {
            Ok(body) => break body,
            // The receiver may be starting too. PEER_UNREACHABLE means no
            // connection was made and PEER_STORE_UNAVAILABLE that the receiver
            // stored nothing, so a retry cannot deliver the message twice;
            // other failures are final.
            Err(e) if worth_retrying(&e) && Instant::now() < client.deadline => {
                std::thread::sleep(SEND_RETRY);
            }
            Err(e) if worth_retrying(&e) => {
                return Err(e.context(format!(
                    "node {} still could not take the message after waiting {} s",
                    args.node_id,
                    client.wait.as_secs()
                )));
            }
            Err(e) => return Err(e),
        }
    };
    println!(
        "delivered to {} at {}",
        delivered.to, delivered.delivered_at
    );
    Ok(())
}

fn worth_retrying(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>().is_some_and(|f| {
        matches!(
            f.code.as_str(),
            // Load on either node: no connection was made, nothing was sent.
            "PEER_UNREACHABLE" | "PEER_STORE_UNAVAILABLE" | "PEER_BUSY" | "NODE_BUSY"
        )
    })
}

pub(crate) fn messages(args: MessagesArgs) -> anyhow::Result<()> {
    // Private reads: a production node wants the token.
    let client = ApiClient::connect(&args.client, TokenUse::IfAvailable)?;
    let url = format!("{}/api/messages?limit={}", client.base, args.limit);
    let page: MessagePage = client.call(client.http.get(url))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    for m in &page.messages {
        println!("{}  {}  {}", m.received_at, m.from, m.body);
    }
    Ok(())
}

pub(crate) fn dht(args: DhtArgs) -> anyhow::Result<()> {
    let token_use = match args.command {
        DhtCommand::Put { .. } | DhtCommand::Add { .. } | DhtCommand::Remove { .. } => {
            TokenUse::Required
        }
        _ => TokenUse::IfAvailable,
    };
    let client = ApiClient::connect(&args.client, token_use)?;
    let base = &client.base;
    let request = match &args.command {
        DhtCommand::Nodes => client.http.get(format!("{base}/api/dht/nodes")),
        DhtCommand::Lookup { id } => client.http.get(format!("{base}/api/dht/lookup/{id}")),
        DhtCommand::Get { key } => client.http.get(format!("{base}/api/dht/records/{key}")),
        DhtCommand::Add { contact } => {
            client
                .http
                .post(format!("{base}/api/dht/contacts"))
                .json(&AddContact {
                    contact: contact.clone(),
                })
        }
        DhtCommand::Remove { id } => client.http.delete(format!("{base}/api/dht/contacts/{id}")),
        DhtCommand::Put { name, value, ttl } => client
            .http
            .post(format!("{base}/api/dht/records"))
            .json(&PublishRecord {
                name: name.clone(),
                value: value.clone(),
                ttl_secs: Some(*ttl),
            }),
    };
    // Printed as the node sent it, whatever the command.
    let body: Value = client.call(request)?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

pub(crate) fn doc(args: DocArgs) -> anyhow::Result<()> {
    let token_use = match args.command {
        DocCommand::List
        | DocCommand::Get { .. }
        | DocCommand::Text { .. }
        | DocCommand::History { .. } => TokenUse::IfAvailable,
        _ => TokenUse::Required,
    };
    let client = ApiClient::connect(&args.client, token_use)?;
    let docs = format!("{}/api/docs", client.base);
    let http = &client.http;
    let request = match &args.command {
        DocCommand::List => http.get(&docs),
        DocCommand::Get { name } => http.get(format!("{docs}/{}", path_segment(name))),
        DocCommand::Text { name, root } => http.get(format!(
            "{docs}/{}/text?root={}",
            path_segment(name),
            path_segment(root)
        )),
        DocCommand::History { name } => http.get(format!("{docs}/{}/history", path_segment(name))),
        DocCommand::Delete { name } => http.delete(format!("{docs}/{}", path_segment(name))),
        DocCommand::Access {
            name,
            policy,
            peers,
            clear_peers,
        } => {
            let body = SetAccess {
                policy: *policy,
                // No `--peer` and no `--clear-peers`: the list stays as it is.
                peers: (*clear_peers || !peers.is_empty()).then(|| peers.iter().copied().collect()),
            };
            http.put(format!("{docs}/{}/access", path_segment(name)))
                .json(&body)
        }
        DocCommand::Token { name, rights, ttl } => http
            .post(format!("{docs}/{}/tokens", path_segment(name)))
            .json(&IssueToken {
                rights: *rights,
                ttl_secs: *ttl,
            }),
        DocCommand::Revoke { id } => http.delete(format!("{}/api/capabilities/{id}", client.base)),
    };
    if let DocCommand::Text { .. } = &args.command {
        let text: DocText = client.call(request)?;
        println!("{}", text.text);
        return Ok(());
    }
    // Printed as the node sent it, whatever the command.
    let body: Value = client.call(request)?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// A document name as one path segment (or query value): everything but unreserved
/// characters escaped.
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn search(args: SearchArgs) -> anyhow::Result<()> {
    let client = ApiClient::connect(&args.client, TokenUse::IfAvailable)?;
    let url = format!(
        "{}/api/ai/search?q={}&k={}",
        client.base,
        path_segment(&args.query),
        args.k
    );
    let found: SearchResults = client.call(client.http.get(url))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    for hit in &found.results {
        println!("{:.3}  {}  {}", hit.score, hit.doc_id, hit.snippet);
    }
    Ok(())
}
