//! Finding (or installing) a Rust toolchain that builds `wasm32-unknown-unknown`.
//!
//! Preferred: a rustup toolchain with the target installed. Where rustup
//! cannot download targets, Debian's `rustc-web` ships a rustc with its std
//! source, so std can be built for wasm with `-Zbuild-std`, linked by LLVM's
//! `wasm-ld`. The xtask installs those packages with apt when missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::run;

pub(crate) const TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_STD_SRC: &str = "/usr/lib/rustlib/src/rust/library";
const WASM_LD: &str = "/usr/lib/llvm-16/bin/wasm-ld";
const DEBIAN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-16"];

/// A `cargo rustc` command that builds for wasm32, with its toolchain-specific settings.
pub(crate) fn wasm_cargo() -> Result<Command> {
    if rustup_has_target() {
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.args(["rustc", "--target", TARGET]);
        return Ok(cargo);
    }
    ensure_debian_toolchain()?;
    let mut cargo = Command::new(DEBIAN_CARGO);
    cargo
        .args(["rustc", "--target", TARGET, "-Zbuild-std=std,panic_abort"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", DEBIAN_RUSTC)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", WASM_LD)
        // The rustup toolchain's wrappers must not leak into Debian's cargo.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO");
    Ok(cargo)
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

fn ensure_debian_toolchain() -> Result<()> {
    let present = [DEBIAN_RUSTC, DEBIAN_CARGO, DEBIAN_STD_SRC, WASM_LD]
        .iter()
        .all(|p| Path::new(p).exists());
    if present {
        return Ok(());
    }
    eprintln!(
        "xtask: no rustup wasm32 target; installing Debian's wasm-capable toolchain: {DEBIAN_PACKAGES:?}"
    );
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "no wasm32 toolchain: install the `{TARGET}` rustup target, or Debian packages {DEBIAN_PACKAGES:?}"
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"])).context("apt-get update")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(DEBIAN_PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("installing the wasm toolchain")
}
