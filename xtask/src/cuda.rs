//! `cargo xtask cuda`: compile the inference engine's GPU path.
//!
//! candle's `cuda` feature needs NVIDIA's `nvcc` at build time (cudarc's build
//! script asks it for the CUDA version, candle-kernels compiles its kernels to
//! PTX with it), though not a GPU. On Debian the compiler comes from
//! `nvidia-cuda-toolkit` in the non-free component (about 1.6 GB to download,
//! 5.5 GB installed), which is why this is a separate command and never part
//! of `cargo xtask test`. When `nvcc` is missing, this command says what it is
//! about to do, enables non-free for that package in its own apt sources file,
//! installs the toolkit, then builds `cloister-inference-candle --features cuda`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{cargo, run};

const PACKAGE: &str = "nvidia-cuda-toolkit";
/// Our own sources file, so the system's files stay untouched.
const SOURCES_FILE: &str = "/etc/apt/sources.list.d/cloister-cuda-nonfree.sources";
/// GPU architecture the kernels are compiled for when no GPU is present to
/// ask (Ampere, sm_80: supported by CUDA 11.8 and runs on every newer GPU's
/// PTX JIT). Override with `CUDA_COMPUTE_CAP`.
const DEFAULT_COMPUTE_CAP: &str = "80";

/// Installs the CUDA toolkit when `nvcc` is missing, then builds the engine
/// with the `cuda` feature.
pub(crate) fn build(root: &Path) -> Result<()> {
    if nvcc_version().is_none() {
        install_toolkit()?;
    }
    let version = nvcc_version().context("nvcc is still missing after installing the toolkit")?;
    eprintln!("xtask: {version}");
    let compute_cap =
        std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| DEFAULT_COMPUTE_CAP.to_owned());
    eprintln!(
        "xtask: building cloister-inference-candle --features cuda (kernels for sm_{compute_cap})"
    );
    run(cargo()
        .current_dir(root)
        .args([
            "build",
            "-p",
            "cloister-inference-candle",
            "--features",
            "cuda",
        ])
        .env("CUDA_COMPUTE_CAP", &compute_cap))
    .context("the `cuda` feature does not build")
}

/// `nvcc --version`'s last line, when nvcc runs.
fn nvcc_version() -> Option<String> {
    let out = Command::new("nvcc").arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("nvcc")
            .trim()
            .to_owned()
    })
}

fn install_toolkit() -> Result<()> {
    let codename = debian_codename().context(
        "nvcc is missing and this is not Debian: install the CUDA toolkit (nvcc) yourself",
    )?;
    eprintln!(
        "xtask: nvcc is missing. About to:\n\
         \x20 1. write {SOURCES_FILE} enabling Debian's contrib and non-free components for {codename}\n\
         \x20 2. apt-get update\n\
         \x20 3. apt-get install {PACKAGE} (about 1.6 GB download, 5.5 GB on disk)"
    );
    if !is_root() {
        bail!("installing {PACKAGE} needs root: run this command as root, or install it yourself");
    }
    let sources = format!(
        "# Written by `cargo xtask cuda` for {PACKAGE} (non-free).\n\
         Types: deb\n\
         URIs: http://deb.debian.org/debian\n\
         Suites: {codename}\n\
         Components: contrib non-free\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    std::fs::write(SOURCES_FILE, sources).with_context(|| format!("writing {SOURCES_FILE}"))?;
    run(Command::new("apt-get").args(["update", "-qq"])).context("apt-get update")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing {PACKAGE}"))
}

/// `VERSION_CODENAME` from /etc/os-release, on Debian only.
fn debian_codename() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    let field = |name: &str| {
        release
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim_matches('"'))
    };
    (field("ID")? == "debian")
        .then(|| field("VERSION_CODENAME").map(str::to_owned))
        .flatten()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
