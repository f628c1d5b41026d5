//! CLI commands that talk to a running node through its HTTP API.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{ClientArgs, DhtArgs, DhtCommand, MessagesArgs, SendArgs};
use crate::config::Config;

struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl ApiClient {
    fn new(args: &ClientArgs, needs_token: bool) -> anyhow::Result<Self> {
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
        let token = match (&args.api_token, &config.api.token, needs_token) {
            (Some(t), _, _) | (None, Some(t), _) => Some(t.clone()),
            (None, None, true) => Some(crate::token::read(&config.data_dir)?),
            (None, None, false) => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            base,
            token,
            http: reqwest::Client::new(),
            runtime,
        })
    }

    fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
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
            let body: Value = response
                .json()
                .await
                .context("the node answered with something other than JSON")?;
            if !status.is_success() {
                let code = body["error"]["code"].as_str().unwrap_or("ERROR");
                let message = body["error"]["message"].as_str().unwrap_or("no message");
                bail!("{code}: {message} (HTTP {status})");
            }
            Ok(body)
        })
    }
}

pub fn send(args: SendArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client, true)?;
    let url = format!("{}/api/messages", client.base);
    let body = client.call(
        client
            .http
            .post(url)
            .json(&json!({ "to": args.node_id, "body": args.text })),
    )?;
    println!(
        "delivered to {} at {}",
        body["to"].as_str().unwrap_or("?"),
        body["deliveredAt"]
    );
    Ok(())
}

pub fn messages(args: MessagesArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client, false)?;
    let url = format!("{}/api/messages?limit={}", client.base, args.limit);
    let body = client.call(client.http.get(url))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for m in body["messages"].as_array().into_iter().flatten() {
        println!(
            "{}  {}  {}",
            m["receivedAt"],
            m["from"].as_str().unwrap_or("?"),
            m["body"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub fn dht(args: DhtArgs) -> anyhow::Result<()> {
    let needs_token = matches!(args.command, DhtCommand::Put { .. });
    let client = ApiClient::new(&args.client, needs_token)?;
    let base = &client.base;
    let request = match &args.command {
        DhtCommand::Nodes => client.http.get(format!("{base}/api/dht/nodes")),
        DhtCommand::Lookup { id } => client.http.get(format!("{base}/api/dht/lookup/{id}")),
        DhtCommand::Get { key } => client.http.get(format!("{base}/api/dht/records/{key}")),
        DhtCommand::Put { name, value, ttl } => client
            .http
            .put(format!("{base}/api/dht/records/{name}"))
            .json(&json!({ "value": value, "ttlSecs": ttl })),
    };
    let body = client.call(request)?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
