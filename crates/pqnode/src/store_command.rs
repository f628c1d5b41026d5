//! `pqnode store check | compact | reset`: the operator's tools for the database, run while
//! the node is stopped (redb locks the file, so they refuse while a node has it open).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::cli::{StoreArgs, StoreCommand};
use crate::components::storage::StorePaths;

pub(crate) fn run(args: StoreArgs) -> anyhow::Result<()> {
    let config = args.folder.load_config()?;
    let paths = StorePaths::new(&config.data_dir);
    match args.command {
        StoreCommand::Check => check(&paths),
        StoreCommand::Compact => compact(&paths),
        StoreCommand::Reset => reset(&paths),
    }
}

fn check(paths: &StorePaths) -> anyhow::Result<()> {
    let report = pqnode_store::check(&paths.database).with_context(|| {
        format!(
            "{} failed the check; `pqnode store reset` moves it aside and starts empty",
            paths.database.display()
        )
    })?;
    println!("{}: ok", paths.database.display());
    println!("  size: {} bytes", report.file_size_bytes);
    if report.repaired {
        println!("  repaired: it had not been closed cleanly; redb recovered it");
    }
    for (table, entries) in &report.entries {
        println!("  {table}: {entries} entries");
    }
    Ok(())
}

fn compact(paths: &StorePaths) -> anyhow::Result<()> {
    let (before, after) = pqnode_store::compact(&paths.database)
        .with_context(|| format!("cannot compact {}", paths.database.display()))?;
    println!(
        "{}: compacted from {before} to {after} bytes",
        paths.database.display()
    );
    Ok(())
}

/// Nothing is deleted: the old file stays next to the new one for inspection or recovery.
fn reset(paths: &StorePaths) -> anyhow::Result<()> {
    if paths.database.exists() {
        refuse_if_open(&paths.database)?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut aside = paths.database.clone().into_os_string();
        aside.push(format!(".corrupt-{stamp}"));
        let aside = std::path::PathBuf::from(aside);
        if aside.exists() {
            bail!("{} exists already; try again in a second", aside.display());
        }
        std::fs::rename(&paths.database, &aside)
            .with_context(|| format!("cannot move {} aside", paths.database.display()))?;
        println!("moved {} to {}", paths.database.display(), aside.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = pqnode_store::Store::open(&paths.database).await?;
        store.close().await
    })?;
    paths.mark_created()?;
    println!("created an empty store at {}", paths.database.display());
    Ok(())
}

/// A running node holds redb's lock on the file (an exclusive `flock`, which this takes too).
fn refuse_if_open(database: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(database)
        .with_context(|| format!("cannot open {}", database.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is open in a running node; stop it first",
            database.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", database.display()))
        }
    }
}
