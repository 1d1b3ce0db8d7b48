//! `cargo xtask cuda`: compile the inference engine's GPU path.
//!
//! candle's `cuda` feature needs NVIDIA's `nvcc` at build time, though not a
//! GPU. Installing it is machine setup, done by
//! `scripts/install-cuda-toolkit.sh` (Debian non-free, about 1.6 GB, which is
//! why this is a separate command and never part of `cargo xtask test`); this
//! command runs that script, then builds `cloister-inference-candle --features cuda`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::{cargo, run};

/// GPU architecture the kernels are compiled for when no GPU is present to
/// ask (Ampere, sm_80: supported by CUDA 11.8 and runs on every newer GPU's
/// PTX JIT). Override with `CUDA_COMPUTE_CAP`.
const DEFAULT_COMPUTE_CAP: &str = "80";

/// Installs the CUDA toolkit when `nvcc` is missing, then builds the engine
/// with the `cuda` feature.
pub(crate) fn build(root: &Path) -> Result<()> {
    run(Command::new("bash").arg(root.join("scripts/install-cuda-toolkit.sh")))
        .context("installing the CUDA toolkit")?;
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
