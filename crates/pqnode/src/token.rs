//! The API token: from the configuration, or generated once and kept in
//! `<data_dir>/api.token` so the CLI on the same machine can read it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub const TOKEN_FILE: &str = "api.token";

pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Returns the configured token, else the stored one, else a new random one (stored 0600).
pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> anyhow::Result<String> {
    if let Some(token) = configured {
        return Ok(token.to_owned());
    }
    let path = token_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mode = fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                );
            }
            let token = text.trim().to_owned();
            if token.len() < 16 {
                bail!(
                    "{} holds no valid token; delete it to generate a new one",
                    path.display()
                );
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The stored token, or `None` while there is no file, for CLI commands
/// that talk to a running node. The node writes the file atomically (by
/// rename), so a file that exists is complete.
pub fn read(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = token_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read the API token from {} (pass --api-token)",
                path.display()
            )
        }),
    }
}

fn create(path: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the system random number generator failed: {e}"))?;
    let token = hex::encode(bytes);
    let tmp = path.with_extension("token.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}
