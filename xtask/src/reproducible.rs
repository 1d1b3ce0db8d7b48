//! Reproducible release builds of the party binaries and plugins, the
//! record of how they were built (`target/build-record.json`), and
//! `rebuild-check`, which rebuilds and compares with a record or a release.
//!
//! The same commit gives the same bytes from any checkout: the build paths
//! are remapped (`--remap-path-prefix`: the checkout to `/cloister`, cargo's
//! home to `/cargo`), `SOURCE_DATE_EPOCH` is the commit's time, the
//! toolchain is `rust-toolchain.toml`'s, and every binary is built by one
//! cargo invocation, so features unify alike whichever image is asked for.
//! Plugins are built as `cargo xtask build-plugins` builds them; with
//! `--reviewed DIR`, the Python and JavaScript components, which their
//! tools do not rebuild byte for byte, are the reviewed ones from DIR,
//! pinned by their manifests' digests ([`crate::guest::reviewed`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{EntryBody, ReleaseBuild, Subject};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{cargo, plugins, run, stdout_of, toolchain};

/// Every party binary, by (package, binary).
pub(crate) const BINARIES: &[(&str, &str)] = &[
    ("cloister-relay", "cloister-relay"),
    ("cloister-gateway", "cloister-gateway"),
    ("cloister-issuer", "cloister-issuer"),
    ("cloister-ledger-server", "cloister-ledger"),
    ("cloister-release", "cloister-release"),
    ("cloister-witness", "cloister-witness"),
    ("cloister-host-cli", "cloister-host"),
    ("cloister-inference-host", "cloister-inference-host"),
    ("cloister-guest-init", "cloister-init"),
    ("cloister-cli", "cloister"),
];

/// The binary a host image runs; its digest goes into releases.
const HOST_BINARY: &str = "cloister-host";

/// Where [`build`] writes its record, relative to the workspace root.
pub(crate) const RECORD: &str = "target/build-record.json";

/// How one build of this tree came out: what `rebuild-check` compares, and
/// what `cloister-release submit --build-record` logs (its `toolchain`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BuildRecord {
    /// `git rev-parse HEAD`, with `-dirty` for uncommitted changes.
    pub source_commit: String,
    /// The commit's time, which the build's timestamps are set to.
    pub source_date_epoch: u64,
    /// The toolchains and the host binary's digest, as a release logs them.
    pub toolchain: ReleaseBuild,
    /// SHA-256 of every party binary, by name.
    pub binaries: BTreeMap<String, String>,
    /// SHA-256 of every reviewed plugin's component, by manifest name.
    pub plugins: BTreeMap<String, String>,
    /// The plugins whose components were not rebuilt but taken from a
    /// folder of reviewed components, pinned by digest (`--reviewed`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pinned: BTreeSet<String>,
}

/// `git log -1 --format=%ct`: the commit's time, `SOURCE_DATE_EPOCH`.
pub(crate) fn source_date_epoch(root: &Path) -> Result<u64> {
    let out = stdout_of(
        Command::new("git")
            .current_dir(root)
            .args(["log", "-1", "--format=%ct"]),
    )?;
    String::from_utf8_lossy(&out)
        .trim()
        .parse()
        .context("git printed no commit time")
}

fn source_commit(root: &Path) -> Result<String> {
    let git = |args: &[&str]| -> Result<String> {
        Ok(String::from_utf8_lossy(&stdout_of(
            Command::new("git").current_dir(root).args(args),
        )?)
        .trim()
        .to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    Ok(if git(&["status", "--porcelain"])?.is_empty() {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

/// The flags that make a release build independent of where it runs, as a
/// `--config` value: `cfg(all())` flags are joined with those of
/// `.cargo/config.toml` (its x86-64 target features), where
/// `RUSTFLAGS` would replace them.
fn release_rustflags(root: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    format!(
        "target.'cfg(all())'.rustflags=[\"--remap-path-prefix={}=/cloister\", \"--remap-path-prefix={}=/cargo\"]",
        root.display(),
        cargo_home.display()
    )
}

/// Builds the plugins and every party binary reproducibly (release
/// profile), writes [`RECORD`] and returns it. With `clean`, the release
/// and wasm outputs are deleted first, so nothing of an earlier build is
/// reused; with `reviewed`, the Python and JavaScript components come from
/// that folder, pinned by digest.
pub(crate) fn build(root: &Path, clean: bool, reviewed: Option<&Path>) -> Result<BuildRecord> {
    let epoch = source_date_epoch(root)?;
    if clean {
        for dir in ["target/release", "target/wasm"] {
            match fs::remove_dir_all(root.join(dir)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(|| format!("deleting {dir}"));
                }
                _ => {}
            }
        }
    }
    let pinned = plugins::build(root, None, reviewed)?;
    let mut command = cargo();
    command
        .current_dir(root)
        .args(["build", "--release", "--locked", "--bins", "--config"])
        .arg(release_rustflags(root))
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env(
            "CARGO_INCREMENTAL",
            std::env::var("CARGO_INCREMENTAL").unwrap_or_else(|_| "0".into()),
        );
    for (package, _) in BINARIES {
        command.args(["-p", package]);
    }
    run(&mut command)?;

    let mut binaries = BTreeMap::new();
    for (_, binary) in BINARIES {
        binaries.insert(
            (*binary).to_owned(),
            sha256_file(&binary_path(root, binary))?,
        );
    }
    let host_binary: HexBytes<32> = binaries[HOST_BINARY].parse().context("host digest")?;
    let record = BuildRecord {
        source_commit: source_commit(root)?,
        source_date_epoch: epoch,
        toolchain: ReleaseBuild {
            rustc: first_line(&stdout_of(
                Command::new("rustc").current_dir(root).arg("-vV"),
            )?),
            cargo: first_line(&stdout_of(cargo().current_dir(root).arg("-V"))?),
            wasm: toolchain::describe(root)?,
            host_binary,
        },
        binaries,
        plugins: plugin_digests(root)?,
        pinned,
    };
    fs::write(
        root.join(RECORD),
        serde_json::to_string_pretty(&record)? + "\n",
    )
    .with_context(|| format!("writing {RECORD}"))?;
    Ok(record)
}

/// A built binary of [`BINARIES`].
pub(crate) fn binary_path(root: &Path, binary: &str) -> PathBuf {
    root.join("target/release").join(binary)
}

fn first_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// SHA-256 of each reviewed plugin's built component, by manifest name
/// (the names a release lists).
fn plugin_digests(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut digests = BTreeMap::new();
    for entry in fs::read_dir(root.join("policies/plugins"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let manifest = plugins::Manifest::read(&path)?;
        let component = root.join("target/plugins").join(&manifest.component);
        digests.insert(manifest.name, sha256_file(&component)?);
    }
    Ok(digests)
}

/// What a rebuild is compared with: a build record, or a release's entries.
struct Expected {
    source_commit: String,
    toolchain: Option<ReleaseBuild>,
    binaries: BTreeMap<String, String>,
    plugins: BTreeMap<String, String>,
}

/// Reads `path`: a [`BuildRecord`], or the JSON entries of a release (what
/// `cloister-release submit --dry-run` prints, one entry or a list, signed or not).
fn expected(path: &Path) -> Result<Expected> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(record) = serde_json::from_str::<BuildRecord>(&text) {
        return Ok(Expected {
            source_commit: record.source_commit,
            toolchain: Some(record.toolchain),
            binaries: record.binaries,
            plugins: record.plugins,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    for mut item in items {
        // A signed entry carries its body under `body`.
        if let Some(body) = item.get_mut("body") {
            item = body.take();
        }
        let body: EntryBody = serde_json::from_value(item)
            .with_context(|| format!("{}: neither a build record nor entries", path.display()))?;
        if let Subject::Release(release) = body.subject {
            let mut binaries = BTreeMap::new();
            if let Some(build) = &release.build {
                binaries.insert(HOST_BINARY.to_owned(), build.host_binary.to_string());
            }
            return Ok(Expected {
                source_commit: body.provenance.source_commit,
                toolchain: release.build.map(|build| *build),
                binaries,
                plugins: release
                    .plugins
                    .into_iter()
                    .map(|plugin| (plugin.name, plugin.digest.to_string()))
                    .collect(),
            });
        }
    }
    bail!("{} holds no release entry", path.display())
}

/// `rebuild-check`: rebuilds (from clean with `clean`; the Python and
/// JavaScript components pinned from `reviewed`) and compares every digest
/// `against` names with the rebuilt one; fails on any difference.
pub(crate) fn rebuild_check(
    root: &Path,
    against: &Path,
    clean: bool,
    reviewed: Option<&Path>,
) -> Result<()> {
    let expected = expected(against)?;
    let rebuilt = build(root, clean, reviewed)?;
    if rebuilt.source_commit != expected.source_commit {
        eprintln!(
            "warning: rebuilt {} but {} was built from {}",
            rebuilt.source_commit,
            against.display(),
            expected.source_commit
        );
    }
    if let Some(toolchain) = &expected.toolchain {
        for (what, was, now) in [
            ("rustc", &toolchain.rustc, &rebuilt.toolchain.rustc),
            ("cargo", &toolchain.cargo, &rebuilt.toolchain.cargo),
            ("wasm", &toolchain.wasm, &rebuilt.toolchain.wasm),
        ] {
            if was != now {
                eprintln!("warning: {what} differs: recorded {was:?}, here {now:?}");
            }
        }
    }
    let mut differ = Vec::new();
    let mut checked = 0;
    let mut pinned = 0;
    for (kind, recorded, here) in [
        ("binary", &expected.binaries, &rebuilt.binaries),
        ("plugin", &expected.plugins, &rebuilt.plugins),
    ] {
        for (name, digest) in recorded {
            checked += 1;
            match here.get(name) {
                Some(ours) if ours == digest && rebuilt.pinned.contains(name) => {
                    pinned += 1;
                    println!("pinned    {kind} {name} {digest} (reviewed, not rebuilt)");
                }
                Some(ours) if ours == digest => println!("same      {kind} {name} {digest}"),
                Some(ours) => {
                    println!("DIFFERENT {kind} {name} recorded {digest}, rebuilt {ours}");
                    differ.push(name.clone());
                }
                None => {
                    println!("MISSING   {kind} {name}: this tree builds no such {kind}");
                    differ.push(name.clone());
                }
            }
        }
    }
    if !differ.is_empty() {
        bail!(
            "{} of {checked} digests differ from {}: {differ:?}",
            differ.len(),
            against.display()
        );
    }
    println!(
        "all {checked} digests of {} rebuilt identically{}",
        against.display(),
        match pinned {
            0 => String::new(),
            pinned => format!(" ({pinned} of them pinned reviewed components)"),
        }
    );
    Ok(())
}
