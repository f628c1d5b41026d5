//! `pqnode`: a post-quantum peer-to-peer node.
//!
//! This binary is the top of the crate graph: configuration, the start-up
//! order, the HTTP API, the system monitor and graceful shutdown. Protocol
//! logic lives in the library crates below it.

mod api;
mod cli;
mod client;
mod components;
mod config;
mod http_error;
mod listen;
mod logging;
mod monitor;
mod node;
mod state;
mod store_command;
mod token;
mod web;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use crate::cli::{Cli, Command, IdArgs, InitArgs, RunArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Init(args)) => init(args),
        Some(Command::Id(args)) => id(args),
        Some(Command::Send(args)) => client::send(args),
        Some(Command::Messages(args)) => client::messages(args),
        Some(Command::Dht(args)) => client::dht(args),
        Some(Command::Doc(args)) => client::doc(args),
        Some(Command::Search(args)) => client::search(args),
        Some(Command::Store(args)) => store_command::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pqnode: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.load_config()?;
    logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pqnode")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut signals = node::ShutdownSignals::install()?;
        let node = node::Node::start(config).await?;
        let signal = signals.recv().await;
        tracing::info!(signal, "received shutdown signal");
        node.shutdown().await
    })
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    if args.path.exists() && !args.force {
        bail!(
            "{} already exists (pass --force to overwrite)",
            args.path.display()
        );
    }
    std::fs::write(&args.path, config::DEFAULT_CONFIG_TOML)
        .with_context(|| format!("cannot write {}", args.path.display()))?;
    println!("wrote {}", args.path.display());
    Ok(())
}

fn id(args: IdArgs) -> anyhow::Result<()> {
    let config = args.folder.load_config()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let crypto = components::crypto::CryptoService::start(&config)?;
    let summary = crypto.identity_summary();
    if args.quiet {
        println!("{}", summary.node_id);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("node id:              {}", summary.node_id);
        println!(
            "ML-DSA-87 public key: sha256:{}",
            summary.signature_key_fingerprint
        );
        println!(
            "ML-KEM-1024 key:      sha256:{}",
            summary.kem_key_fingerprint
        );
        println!("data folder:          {}", config.data_dir.display());
    }
    Ok(())
}
