//! `cargo xtask fuzz`: the cargo-fuzz targets over every parser of outside
//! input, each run with its committed seed corpus.
//!
//! A target's seed corpus is `<crate>/fuzz/corpus/<target>/` (small,
//! minimised, committed; the normal test suite runs the fuzz body over it).
//! What a campaign finds goes to `target/fuzz-corpus/<target>/`; `--minimise`
//! adds to the seed corpus the fewest of those inputs that reach edges the
//! seeds do not. Each fuzz crate is its own
//! workspace with its own `target/` (cargo-fuzz builds with instrumentation
//! flags the main build must not see); its lock file starts as a copy of
//! the workspace's, so it builds the same dependency versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{cargo, plugins, run};

/// The cargo-fuzz release `cargo xtask fuzz` installs and runs.
const CARGO_FUZZ_VERSION: &str = "0.13.1";

/// Every fuzz target: its name and the crate whose `fuzz/` holds it.
const FUZZ_TARGETS: &[(&str, &str)] = &[
    ("decapsulate", "gateway"),
    ("bhttp_request", "gateway"),
    ("key_config", "gateway"),
    ("tokens", "crates/cloister-privacypass"),
    ("snp_evidence", "crates/cloister-attestation"),
    ("frames", "crates/cloister-ratls"),
    ("feature_json", "host"),
    ("entry", "crates/cloister-ledger-verify"),
    ("proof", "crates/cloister-ledger-verify"),
    ("checkpoint", "crates/cloister-ledger-verify"),
];

/// The short names of the fuzz crates, for `cargo xtask fuzz CRATE [TARGET]`.
const FUZZ_CRATES: &[(&str, &str)] = &[
    ("gateway", "gateway"),
    ("privacypass", "crates/cloister-privacypass"),
    ("attestation", "crates/cloister-attestation"),
    ("ratls", "crates/cloister-ratls"),
    ("host", "host"),
    ("ledger", "crates/cloister-ledger-verify"),
];

/// What to fuzz and for how long.
pub struct Options<'a> {
    /// A target, or a fuzz crate's short name.
    pub name: &'a str,
    /// With a crate's name: the target in it (default: its first).
    pub target: Option<&'a str>,
    /// Stop after this many seconds.
    pub seconds: u64,
    /// Stop after this many executions (also bounded by `seconds`).
    pub runs: Option<u64>,
    /// Fold the campaign's corpus into a minimal seed corpus instead of fuzzing.
    pub minimise: bool,
}

/// Runs one target (see the module documentation).
pub fn fuzz(root: &Path, options: &Options<'_>) -> Result<()> {
    let (target, dir) = resolve(options.name, options.target)?;
    let cargo_fuzz = install_cargo_fuzz(root)?;
    let crate_dir = root.join(dir);
    let lock = crate_dir.join("fuzz/Cargo.lock");
    if !lock.exists() {
        std::fs::copy(root.join("Cargo.lock"), &lock)
            .with_context(|| format!("seeding {}", lock.display()))?;
    }
    if dir == "host" {
        plugins::build_all(root)?;
    }
    let seeds = crate_dir.join("fuzz/corpus").join(target);
    let found = root.join("target/fuzz-corpus").join(target);
    for corpus in [&seeds, &found] {
        std::fs::create_dir_all(corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
    }
    let mut command = Command::new(&cargo_fuzz);
    // cargo-fuzz passes nightly flags; RUSTC_BOOTSTRAP lets the pinned stable toolchain take them.
    command
        .current_dir(&crate_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--sanitizer", "none", target]);
    if options.minimise {
        // libFuzzer adds to the first folder the fewest inputs of the others
        // that reach edges it does not (edge coverage only, no hit counts).
        return run(command
            .args([&seeds, &found])
            .args(["--", "-merge=1", "-use_counters=0"]));
    }
    command
        .args([&found, &seeds])
        .arg("--")
        .arg(format!("-max_total_time={}", options.seconds))
        .arg("-print_final_stats=1");
    if let Some(runs) = options.runs {
        command.arg(format!("-runs={runs}"));
    }
    run(&mut command)
}

/// The target and its crate's folder for `name` (a target or a crate).
fn resolve<'a>(name: &'a str, target: Option<&'a str>) -> Result<(&'a str, &'static str)> {
    let by_target = |t: &str| FUZZ_TARGETS.iter().find(|(n, _)| *n == t).copied();
    if let Some((_, dir)) = by_target(name) {
        if target.is_some() {
            bail!("`{name}` is a target: give no second name");
        }
        return Ok((name, dir));
    }
    let Some(&(_, dir)) = FUZZ_CRATES.iter().find(|(n, _)| *n == name) else {
        bail!(
            "no fuzz target or crate `{name}`; targets: {:?}; crates: {:?}",
            FUZZ_TARGETS.iter().map(|t| t.0).collect::<Vec<_>>(),
            FUZZ_CRATES.iter().map(|c| c.0).collect::<Vec<_>>()
        );
    };
    let in_crate = |t: &&(&str, &str)| t.1 == dir;
    match target {
        Some(t) if by_target(t).is_some_and(|(_, d)| d == dir) => Ok((t, dir)),
        Some(t) => bail!(
            "no target `{t}` in `{name}`; it has {:?}",
            FUZZ_TARGETS
                .iter()
                .filter(in_crate)
                .map(|t| t.0)
                .collect::<Vec<_>>()
        ),
        None => FUZZ_TARGETS
            .iter()
            .find(in_crate)
            .map(|&(t, _)| (t, dir))
            .context("a fuzz crate without targets"),
    }
}

/// The pinned cargo-fuzz in `target/tools/cargo-fuzz`, installed from
/// crates.io when missing or of another version.
fn install_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let prefix = root.join("target/tools/cargo-fuzz");
    let binary = prefix.join("bin/cargo-fuzz");
    let version = Command::new(&binary).arg("--version").output();
    let expected = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    if version.is_ok_and(|v| String::from_utf8_lossy(&v.stdout).trim() == expected) {
        return Ok(binary);
    }
    run(cargo()
        .args(["install", "--locked", "cargo-fuzz", "--version"])
        .arg(CARGO_FUZZ_VERSION)
        .arg("--root")
        .arg(&prefix))?;
    Ok(binary)
}
