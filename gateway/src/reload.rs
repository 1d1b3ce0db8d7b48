//! The host list, re-read without a restart: on SIGHUP the gateway reads
//! its configuration file again and swaps in the new `[router] hosts`.
//! Only the host list changes; every other setting needs a restart. A file
//! that does not read, parse or validate leaves the current list in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::config::GatewayConfig;
use crate::hosts::{HostChange, HostListError, HostPool};

/// Why a reload was refused; the current host list stays.
#[derive(Debug, Error)]
pub enum ReloadError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// The file is not a valid configuration.
    #[error("parsing {0}: {1}")]
    Parse(PathBuf, #[source] toml::de::Error),
    /// The host list in it is not valid.
    #[error("host list in {0}: {1}")]
    Hosts(PathBuf, #[source] HostListError),
}

/// Reads `path` and replaces the hosts of `pool` with its `[router] hosts`.
///
/// # Errors
/// See [`ReloadError`]; `pool` is then unchanged.
pub fn reload_hosts(path: &Path, pool: &HostPool) -> Result<HostChange, ReloadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReloadError::Read(path.to_owned(), e))?;
    let config: GatewayConfig =
        toml::from_str(&text).map_err(|e| ReloadError::Parse(path.to_owned(), e))?;
    pool.replace(&config.router.hosts)
        .map_err(|e| ReloadError::Hosts(path.to_owned(), e))
}

/// Reloads the host list from `path` on every SIGHUP, logging what changed
/// or why the file was refused.
///
/// # Errors
/// The signal handler could not be installed.
#[cfg(unix)]
pub fn spawn_reload_on_hangup(
    path: PathBuf,
    pool: Arc<HostPool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reload_hosts(&path, &pool) {
                Ok(change) if change.is_empty() => {
                    tracing::info!(file = %path.display(), "SIGHUP: host list unchanged");
                }
                Ok(change) => {
                    tracing::info!(file = %path.display(), added = ?change.added, removed = ?change.removed, kept = change.kept, "SIGHUP: host list reloaded");
                }
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: reload refused, keeping the current host list");
                }
            }
        }
    }))
}
