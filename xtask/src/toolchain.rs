//! Finding a Rust toolchain that builds `wasm32-unknown-unknown`.
//!
//! Preferred: a rustup toolchain with the target installed. Where rustup
//! cannot download targets, Debian's `rustc-web` ships a rustc with its std
//! source, so std is built for wasm with `-Zbuild-std`, linked by LLVM's
//! `wasm-ld`. Installing those packages is machine setup, done by
//! `scripts/install-wasm-toolchain.sh` (a no-op when they are present); the
//! choice of path and the build flags are made here.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::{run, stdout_of};

pub(crate) const TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const WASM_LD: &str = "/usr/lib/llvm-16/bin/wasm-ld";

/// A `cargo rustc` command that builds for wasm32, with its toolchain-specific settings.
pub(crate) fn wasm_cargo(root: &Path) -> Result<Command> {
    if rustup_has_target() {
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.args(["rustc", "--target", TARGET]);
        return Ok(cargo);
    }
    run(Command::new("bash").arg(root.join("scripts/install-wasm-toolchain.sh")))
        .context("no rustup wasm32 target, and Debian's wasm toolchain could not be installed")?;
    let mut cargo = Command::new(DEBIAN_CARGO);
    cargo
        .args(["rustc", "--target", TARGET, "-Zbuild-std=std,panic_abort"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", DEBIAN_RUSTC)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", WASM_LD)
        // The rustup toolchain's wrappers must not leak into Debian's cargo
        // (the suite's clippy-driver would answer for rustup's sysroot).
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO");
    Ok(cargo)
}

/// The toolchain [`wasm_cargo`] builds plugins with, as a release records
/// it: the rustup target of the pinned toolchain, or Debian's packages by
/// version.
pub(crate) fn describe(root: &Path) -> Result<String> {
    if rustup_has_target() {
        let rustc = stdout_of(Command::new("rustc").current_dir(root).arg("-V"))?;
        return Ok(format!(
            "rustup {TARGET} of {}",
            String::from_utf8_lossy(&rustc).trim()
        ));
    }
    let versions = stdout_of(Command::new("dpkg-query").args([
        "-W",
        "-f",
        "${Package} ${Version}, ",
        "rustc-web",
        "rust-web-src",
        "lld-16",
    ]))?;
    Ok(format!(
        "Debian {}-Zbuild-std",
        String::from_utf8_lossy(&versions)
    ))
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
}
