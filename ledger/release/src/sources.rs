//! Where a release's inputs come from: the host's own measurement, the
//! gateway's published keys, and the build's provenance.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use cloister_host::LaunchDigests;
use cloister_ledger_verify::entry::{Measurement, ReleaseBuild};
use cloister_tls::Trust;
use serde::Deserialize;

use crate::ReleaseError;

/// Reads the JSON `cloister-host measure` printed, saved in a file.
///
/// # Errors
/// The file is unreadable or is not that JSON.
pub fn read_launch(path: &Path) -> Result<LaunchDigests, ReleaseError> {
    let text = fs::read_to_string(path).map_err(|source| ReleaseError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReleaseError::Measurement {
        from: path.display().to_string(),
        source,
    })
}

/// The parts of the build record (`target/build-record.json`, written by
/// `cargo xtask images` and `cargo xtask rebuild-check`) a release logs.
#[derive(Debug, Deserialize)]
pub struct BuildRecord {
    /// The commit that was built.
    pub source_commit: String,
    /// The toolchains and the host binary's digest.
    pub toolchain: ReleaseBuild,
}

/// Reads a build record.
///
/// # Errors
/// The file is unreadable or is not a build record.
pub fn read_build_record(path: &Path) -> Result<BuildRecord, ReleaseError> {
    read_record(path, "the build record (`cargo xtask images` writes it)")
}

/// The parts of `target/cvm/launch.json` (written by `cargo xtask
/// cvm-image`, the guest image recipe) a release logs.
#[derive(Debug, Deserialize)]
pub struct CvmLaunch {
    /// The launch measurement `sev-snp-measure` computed for the image.
    pub measurement: Measurement,
    /// The SNP guest policy the image is launched with.
    pub snp_policy: u64,
}

/// Reads the guest image recipe's expected launch.
///
/// # Errors
/// The file is unreadable or is not that JSON.
pub fn read_cvm_launch(path: &Path) -> Result<CvmLaunch, ReleaseError> {
    read_record(
        path,
        "the guest image's launch (`cargo xtask cvm-image` writes it)",
    )
}

fn read_record<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ReleaseError> {
    let text = fs::read_to_string(path).map_err(|source| ReleaseError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReleaseError::Record {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Runs `HOST measure` in `root`: the host binary hashes itself, its plugins
/// and its policies, so it is the single source of these digests.
///
/// # Errors
/// The host cannot be run, fails, or prints something else than its launch digests.
pub fn measure_host(host: &Path, root: &Path) -> Result<LaunchDigests, ReleaseError> {
    let failed = |reason: String| ReleaseError::HostMeasure {
        host: host.to_owned(),
        reason,
    };
    let output = Command::new(host)
        .current_dir(root)
        .arg("measure")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!("it exited with {}", output.status)));
    }
    serde_json::from_slice(&output.stdout).map_err(|source| ReleaseError::Measurement {
        from: format!("`{} measure`", host.display()),
        source,
    })
}

/// `GET` the gateway's `application/ohttp-keys` list.
///
/// # Errors
/// The endpoint cannot be reached or answers with another media type.
pub async fn fetch_key_list(url: &str, trust: &Trust) -> Result<Vec<u8>, ReleaseError> {
    fetch(url, cloister_wire::media::OHTTP_KEYS, trust).await
}

/// `GET` the issuer's token key directory (RFC 9578 §4).
///
/// # Errors
/// The endpoint cannot be reached or answers with another media type.
pub async fn fetch_issuer_directory(url: &str, trust: &Trust) -> Result<Vec<u8>, ReleaseError> {
    fetch(
        url,
        cloister_privacypass::directory::DIRECTORY_MEDIA_TYPE,
        trust,
    )
    .await
}

async fn fetch(url: &str, expected: &str, trust: &Trust) -> Result<Vec<u8>, ReleaseError> {
    let failed = |reason: String| ReleaseError::FetchKeys {
        url: url.to_owned(),
        reason,
    };
    let response = trust
        .http_client()
        .build()
        .map_err(|error| failed(error.to_string()))?
        .get(url)
        .header("accept", expected)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| failed(error.to_string()))?;
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if media_type != expected {
        return Err(failed(format!(
            "it answered with {media_type:?}, not {expected}"
        )));
    }
    response
        .bytes()
        .await
        .map(|body| body.to_vec())
        .map_err(|error| failed(error.to_string()))
}

/// `git rev-parse HEAD` in `root`, with `-dirty` when the work tree has
/// uncommitted changes.
///
/// # Errors
/// git cannot be run or `root` is not a git work tree.
pub fn source_commit(root: &Path) -> Result<String, ReleaseError> {
    let git = |args: &[&str]| -> Result<String, ReleaseError> {
        let failed = |reason: String| ReleaseError::Git {
            args: args.join(" "),
            reason,
        };
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|error| failed(error.to_string()))?;
        if !output.status.success() {
            return Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = !git(&["status", "--porcelain"])?.is_empty();
    Ok(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// `user@host` of whoever runs the release.
pub fn default_builder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |h| h.trim().to_owned());
    format!("{user}@{host}")
}
