//! Plugins written in Python and JavaScript: their pinned toolchains and
//! their builds into components.
//!
//! * Python: `componentize-py`, pinned with hashes in
//!   `xtask/python/requirements.txt`, installed by pip into
//!   `target/tools/componentize-py`.
//! * JavaScript: `@bytecodealliance/componentize-js`, pinned with
//!   integrity hashes in `xtask/js/package-lock.json`, installed by
//!   `npm ci` into `target/tools/componentize-js`, called through
//!   `xtask/js/componentize.mjs`.
//!
//! An install is kept while the pin file it came from is unchanged, so
//! running again costs nothing; CI keeps `target/tools` between runs.
//!
//! Both tools snapshot a whole interpreter (CPython, SpiderMonkey) after
//! running its start-up, and that snapshot holds values drawn from the
//! build machine's randomness and clocks: two builds of the same sources
//! differ in bytes (upstream: componentize-py issue 247, ComponentizeJS
//! issue 321). So a component is rebuilt only when one of its inputs (the
//! tool's pin, the WIT, the sources) changes, and the digest in the manifest
//! names the reviewed build. A rebuilder cannot reproduce those bytes, so it
//! pins them instead, as it pins the Debian packages of an image: `--reviewed
//! DIR` takes each Python and JavaScript component from DIR and refuses it
//! unless its digest is the one the manifest names ([`reviewed`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use sha2::{Digest as _, Sha256};

use crate::plugins::Manifest;
use crate::run;

/// The language of a plugin, from `language = "..."` in its
/// `[package.metadata.cloister]` (absent: Rust).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Language {
    Rust,
    Python,
    Js,
}

impl Language {
    pub(crate) fn parse(name: Option<&str>) -> Result<Self> {
        match name {
            None | Some("rust") => Ok(Self::Rust),
            Some("python") => Ok(Self::Python),
            Some("js") => Ok(Self::Js),
            Some(other) => bail!("unknown plugin language `{other}` (rust, python or js)"),
        }
    }

    /// The plugin's source files, by extension, in the top of its folder.
    fn source_extensions(self) -> &'static [&'static str] {
        match self {
            Self::Rust => &[],
            Self::Python => &["py"],
            Self::Js => &["js", "mjs"],
        }
    }
}

/// The Python module `componentize-py` starts: `plugins/<name>/app.py`.
const PYTHON_APP: &str = "app";
/// The module componentize-js starts: `plugins/<name>/plugin.js`.
const JS_ENTRY: &str = "plugin.js";
/// Name of the file recording what an install or a build came from.
const STAMP: &str = ".cloister-inputs";

/// An installed tool: where, and the digest of the pin it came from.
struct Tool {
    dir: PathBuf,
    pin: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `dir` holds an install or build made from `inputs`.
fn stamped(dir: &Path, inputs: &str) -> bool {
    fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == inputs)
}

/// Installs a tool into `target/tools/<name>` with `install` unless it is
/// there from the same pin file.
fn ensure_tool(
    root: &Path,
    name: &str,
    pin_file: &str,
    source: &str,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<Tool> {
    let dir = root.join("target/tools").join(name);
    let pin_path = root.join(pin_file);
    let pin = sha256_hex(&fs::read(&pin_path).with_context(|| format!("reading {pin_file}"))?);
    if !stamped(&dir, &pin) {
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let started = Instant::now();
        install(&dir).with_context(|| format!("installing {name} from {source}"))?;
        fs::write(dir.join(STAMP), &pin)?;
        eprintln!(
            "xtask: installed {name} from {source} (pinned in {pin_file}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Tool { dir, pin })
}

/// componentize-py from PyPI, every file checked against the hashes of the
/// requirements file.
fn componentize_py(root: &Path) -> Result<Tool> {
    const PIN: &str = "xtask/python/requirements.txt";
    let tool = ensure_tool(root, "componentize-py", PIN, "PyPI", |dir| {
        run(Command::new(python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--require-hashes", "--no-deps", "--only-binary=:all:"])
            .arg("--target")
            .arg(dir)
            .arg("--requirement")
            .arg(root.join(PIN)))
    })?;
    let version = fs::read_dir(&tool.dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find_map(|n| {
            Some(
                n.strip_prefix("componentize_py-")?
                    .strip_suffix(".dist-info")?
                    .to_owned(),
            )
        })
        .context("componentize-py's install has no dist-info")?;
    eprintln!(
        "xtask: componentize-py {version} (PyPI, hash-checked) in {}",
        tool.dir.display()
    );
    Ok(tool)
}

/// componentize-js from npm, every package checked against the lock file's
/// integrity hashes. Install scripts are not run: none is needed.
fn componentize_js(root: &Path) -> Result<Tool> {
    const PIN: &str = "xtask/js/package-lock.json";
    let tool = ensure_tool(root, "componentize-js", PIN, "npm", |dir| {
        for file in ["package.json", "package-lock.json"] {
            fs::copy(root.join("xtask/js").join(file), dir.join(file))?;
        }
        run(Command::new("npm").current_dir(dir).args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))
    })?;
    let package = tool
        .dir
        .join("node_modules/@bytecodealliance/componentize-js/package.json");
    let package: serde_json::Value = serde_json::from_slice(&fs::read(&package)?)?;
    eprintln!(
        "xtask: @bytecodealliance/componentize-js {} (npm, integrity-checked) in {}",
        package["version"].as_str().unwrap_or("?"),
        tool.dir.display()
    );
    Ok(tool)
}

fn python() -> std::ffi::OsString {
    std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into())
}

/// Copies the files the tool reads into `target/plugin-build/<name>`: the
/// WIT folder (the plugin's world, the shared `cloister:feature` package as
/// its dependency) and the plugin's sources. Returns that folder and a
/// digest of everything copied.
fn stage(root: &Path, name: &str, dir: &Path, language: Language) -> Result<(PathBuf, String)> {
    let build = root.join("target/plugin-build").join(name);
    for sub in ["wit", "src"] {
        let path = build.join(sub);
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
    }
    fs::create_dir_all(build.join("wit/deps/cloister-feature"))?;
    fs::create_dir_all(build.join("src"))?;
    let mut copies = vec![
        (dir.join("wit/world.wit"), build.join("wit/world.wit")),
        (
            root.join("wit/feature.wit"),
            build.join("wit/deps/cloister-feature/feature.wit"),
        ),
    ];
    let mut sources: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| language.source_extensions().contains(&e))
        })
        .collect();
    sources.sort();
    for source in sources {
        let file = source.file_name().context("source file name")?;
        copies.push((source.clone(), build.join("src").join(file)));
    }
    let mut digest = Sha256::new();
    for (from, to) in &copies {
        let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        digest.update(to.strip_prefix(&build)?.to_string_lossy().as_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
        fs::write(to, bytes)?;
    }
    Ok((build, hex::encode(digest.finalize())))
}

/// The reviewed component of a Python or JavaScript plugin, from `store`
/// (the file its manifest's `component` names, as in `target/plugins`),
/// refused unless its SHA-256 is the `digest` the manifest pins.
pub(crate) fn reviewed(store: &Path, name: &str, manifest: &Path) -> Result<Vec<u8>> {
    let pin = Manifest::read(manifest)
        .with_context(|| format!("{name}: no manifest pins its component's digest"))?;
    let path = store.join(&pin.component);
    let bytes = fs::read(&path)
        .with_context(|| format!("{name}: reading the reviewed component {}", path.display()))?;
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    ensure!(
        digest == pin.digest,
        "{name}: {} is {digest}, but {} pins {}: not the reviewed component",
        path.display(),
        manifest.display(),
        pin.digest
    );
    eprintln!(
        "xtask: {name}: the reviewed component {} ({digest}), not rebuilt",
        path.display()
    );
    Ok(bytes)
}

/// Builds a Python or JavaScript plugin into a component, or returns the
/// one built from the same inputs before.
pub(crate) fn build(root: &Path, name: &str, dir: &Path, language: Language) -> Result<Vec<u8>> {
    let tool = match language {
        Language::Python => componentize_py(root)?,
        Language::Js => componentize_js(root)?,
        Language::Rust => bail!("{name}: Rust plugins are built by cargo"),
    };
    let (build, sources) = stage(root, name, dir, language)?;
    let script = root.join("xtask/js/componentize.mjs");
    let inputs = format!(
        "tool {}\nsources {sources}\nscript {}\n",
        tool.pin,
        sha256_hex(&fs::read(&script)?)
    );
    let out = build.join("component.wasm");
    if stamped(&build, &inputs) && out.exists() {
        eprintln!(
            "xtask: {name}: sources unchanged, keeping {}",
            out.display()
        );
        return Ok(fs::read(&out)?);
    }
    let _ = fs::remove_file(build.join(STAMP));
    let started = Instant::now();
    let (wit, src) = (build.join("wit"), build.join("src"));
    match language {
        Language::Python => run(Command::new(python())
            .env("PYTHONPATH", &tool.dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args([
                "-c",
                "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
                "--quiet",
            ])
            .arg("--wit-path")
            .arg(&wit)
            .args(["--world", name, "componentize", "--python-path"])
            .arg(&src)
            .arg(PYTHON_APP)
            .arg("--output")
            .arg(&out))?,
        Language::Js => run(Command::new("node")
            .arg(&script)
            .arg(&tool.dir)
            .arg(src.join(JS_ENTRY))
            .arg(&wit)
            .arg(name)
            .arg(&out))?,
        Language::Rust => bail!("{name}: Rust plugins are built by cargo"),
    }
    fs::write(build.join(STAMP), inputs)?;
    eprintln!(
        "xtask: {name}: built from {language:?} sources in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(fs::read(&out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store holding `bytes` as `tone.wasm` and a manifest pinning `pinned`.
    fn store_and_manifest(bytes: &[u8], pinned: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("tone.wasm"), bytes).expect("component");
        let manifest = dir.path().join("tone.toml");
        fs::write(
            &manifest,
            format!("name = \"tone\"\ncomponent = \"tone.wasm\"\ndigest = \"{pinned}\"\n"),
        )
        .expect("manifest");
        (dir, manifest)
    }

    #[test]
    fn the_reviewed_component_is_taken_when_its_digest_is_pinned() {
        let bytes = b"\0asm reviewed";
        let pinned = format!("sha256:{}", sha256_hex(bytes));
        let (dir, manifest) = store_and_manifest(bytes, &pinned);
        let taken = reviewed(dir.path(), "tone", &manifest).expect("pinned bytes");
        assert_eq!(taken, bytes);
    }

    #[test]
    fn a_reviewed_component_with_other_bytes_is_refused() {
        let pinned = format!("sha256:{}", sha256_hex(b"\0asm reviewed"));
        let (dir, manifest) = store_and_manifest(b"\0asm rebuilt", &pinned);
        let error = format!(
            "{:#}",
            reviewed(dir.path(), "tone", &manifest).expect_err("refused")
        );
        assert!(
            error.contains("not the reviewed component") && error.contains(&pinned),
            "{error}"
        );
    }

    #[test]
    fn a_missing_reviewed_component_or_manifest_is_an_error() {
        let (dir, manifest) = store_and_manifest(b"x", "sha256:00");
        fs::remove_file(dir.path().join("tone.wasm")).expect("remove");
        let error = format!(
            "{:#}",
            reviewed(dir.path(), "tone", &manifest).expect_err("refused")
        );
        assert!(error.contains("reading the reviewed component"), "{error}");
        let error = format!(
            "{:#}",
            reviewed(dir.path(), "tone", &dir.path().join("none.toml")).expect_err("refused")
        );
        assert!(error.contains("no manifest pins"), "{error}");
    }
}
