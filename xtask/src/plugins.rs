//! Building plugins into components and keeping manifests in step.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use cloister_wit::WitWorld;
use sha2::{Digest as _, Sha256};
use wit_component::ComponentEncoder;

use crate::guest::{self, Language};
use crate::run;
use crate::toolchain::{TARGET, wasm_cargo};

/// The function every feature component exports (with the input and
/// output types of its own WIT world).
const RUN_EXPORT: &str = "run";
/// The interfaces a Rust plugin may import: nothing else, not even WASI
/// (Python and JavaScript plugins add the WASI interfaces their manifests
/// list).
const ALLOWED_IMPORTS: &[&str] = &[
    "cloister:feature/inference@0.1.0",
    "cloister:feature/log@0.1.0",
    "cloister:feature/types@0.1.0",
];
/// Initial linear memory of every plugin: Rust's 1 MiB stack (at the
/// bottom, so an overflow traps), the static data, and about 240 KiB of heap
/// that the SDK's allocator (plugins/sdk/src/heap.rs) bump-allocates from
/// before it grows memory. No larger: when an instance ends, the host finds the pages it
/// wrote by scanning the page table of the whole memory. A multiple of the
/// 64 KiB page.
const INITIAL_MEMORY_BYTES: u32 = (1 << 20) + (256 << 10);
/// Folders holding plugin crates.
const PLUGIN_FOLDERS: &[&str] = &["plugins", "plugins/fixtures"];

/// A plugin crate of the workspace.
pub(crate) struct PluginCrate {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) language: Language,
}

/// What `[package.metadata.cloister]` of a plugin's `Cargo.toml` says.
#[derive(serde::Deserialize, Default)]
struct PluginMetadata {
    #[serde(default)]
    plugin: bool,
    language: Option<String>,
}

/// The `[package.metadata.cloister]` table of a `Cargo.toml`, if any.
fn plugin_metadata(cargo_toml: &str) -> Result<PluginMetadata> {
    let table: toml::Table = toml::from_str(cargo_toml)?;
    let cloister = table
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("cloister"));
    Ok(match cloister {
        Some(value) => value.clone().try_into()?,
        None => PluginMetadata::default(),
    })
}

/// Plugin crates: folders under [`PLUGIN_FOLDERS`] whose `Cargo.toml` has
/// `[package.metadata.cloister] plugin = true`, in the language its
/// `language` key names (`python`, `js`; absent: Rust).
pub(crate) fn plugin_crates(root: &Path) -> Result<Vec<PluginCrate>> {
    let mut crates = Vec::new();
    for folder in PLUGIN_FOLDERS {
        let Ok(entries) = fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let dir = entry?.path();
            let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let metadata = plugin_metadata(&manifest)
                .with_context(|| format!("{}/Cargo.toml", dir.display()))?;
            if metadata.plugin {
                let name = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("plugin folder name")?
                    .to_owned();
                let language = Language::parse(metadata.language.as_deref())
                    .with_context(|| format!("plugin {name}"))?;
                crates.push(PluginCrate {
                    name,
                    dir,
                    language,
                });
            }
        }
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

/// The `--reviewed DIR` option of the commands that build plugins for a
/// release or a rebuild.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ReviewedComponents {
    /// Take the Python and JavaScript plugins' components from this folder
    /// (file names as in `target/plugins`) instead of building them, each
    /// refused unless its digest is the one its manifest pins: their tools
    /// do not rebuild byte for byte, so a rebuilder uses the reviewed bytes.
    #[arg(long = "reviewed", value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Builds every plugin into `target/plugins`.
pub(crate) fn build_all(root: &Path) -> Result<()> {
    build(root, None, None).map(drop)
}

/// Builds plugin `only`, or every plugin, into `target/plugins`, the
/// Python and JavaScript ones with a manifest taken from `reviewed` when
/// given ([`guest::reviewed`]); returns the names of those taken.
pub(crate) fn build(
    root: &Path,
    only: Option<&str>,
    reviewed: Option<&Path>,
) -> Result<BTreeSet<String>> {
    let mut crates = plugin_crates(root)?;
    if let Some(name) = only {
        crates.retain(|plugin| plugin.name == name);
        ensure!(!crates.is_empty(), "no plugin `{name}` under plugins/");
    }
    let wasm_target = root.join("target/wasm");
    let rust: Vec<_> = crates
        .iter()
        .filter(|p| p.language == Language::Rust)
        .collect();
    eprintln!(
        "xtask: building {} plugins ({} in Rust for {TARGET})",
        crates.len(),
        rust.len()
    );
    for plugin in &rust {
        // Plugin crates are rlibs (so they also build and test natively);
        // only here are they linked as the cdylib a component is made from.
        let mut cargo = wasm_cargo(root)?;
        cargo
            .current_dir(root)
            .args(["--release", "--crate-type", "cdylib", "-p", &plugin.name])
            .arg("--target-dir")
            .arg(&wasm_target)
            // Speed over size: guest code runs on every request, and a few
            // KiB more only lengthen the one compilation at load.
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
            .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            // No flags for std and the dependencies (whatever RUSTFLAGS
            // says), so their artefacts do not depend on where the tree is
            // and another checkout (the template test's copy) can share them.
            .env("CARGO_ENCODED_RUSTFLAGS", "")
            // For the plugin crate only: same bytes from any checkout (the
            // digest goes into reviewed manifests), and a larger initial
            // memory, which gives the SDK's allocator room to serve short
            // requests without `memory.grow`.
            .arg("--")
            .arg(format!("--remap-path-prefix={}=/cloister", root.display()))
            .arg(format!(
                "-Clink-arg=--initial-memory={INITIAL_MEMORY_BYTES}"
            ));
        run(&mut cargo)?;
    }

    let out_dir = root.join("target/plugins");
    fs::create_dir_all(&out_dir)?;
    let mut pinned = BTreeSet::new();
    for plugin in &crates {
        let manifest = root
            .join("policies/plugins")
            .join(format!("{}.toml", plugin.name));
        let component = match (plugin.language, reviewed) {
            (Language::Rust, _) => rust_component(&wasm_target, &plugin.name)?,
            // A fixture without a manifest is never reviewed: built as usual.
            (_, Some(store)) if manifest.exists() => {
                pinned.insert(plugin.name.clone());
                guest::reviewed(store, &plugin.name, &manifest)?
            }
            (language, _) => guest::build(root, &plugin.name, &plugin.dir, language)?,
        };
        let built_world = WitWorld::from_component(&component)
            .with_context(|| format!("plugin {}", plugin.name))?;
        check_imports(plugin, &built_world.imports(), &manifest)?;
        ensure!(
            built_world.exports().iter().any(|e| e == RUN_EXPORT),
            "plugin {} does not export `{RUN_EXPORT}`",
            plugin.name
        );
        // Releases name a plugin's world `cloister:<name>/<name>`.
        let package = WitWorld::from_source(
            &root.join("wit/feature.wit"),
            &plugin.dir.join("wit/world.wit"),
        )?
        .package();
        ensure!(
            package == format!("cloister:{}", plugin.name),
            "plugin {}'s wit/world.wit declares package `{package}`; it must be `cloister:{}` (see xtask/template/common/wit/world.wit.in)",
            plugin.name,
            plugin.name
        );
        let path = out_dir.join(format!("{}.wasm", plugin.name));
        fs::write(&path, &component)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&component)));
        if manifest.exists() {
            update_digest(&manifest, &digest)?;
        }
        eprintln!(
            "xtask: {} -> {} ({} bytes, {digest})",
            plugin.name,
            path.display(),
            component.len()
        );
    }
    Ok(pinned)
}

/// The component of a Rust plugin from the core module cargo linked.
fn rust_component(wasm_target: &Path, name: &str) -> Result<Vec<u8>> {
    let module_path = wasm_target
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let module =
        fs::read(&module_path).with_context(|| format!("reading {}", module_path.display()))?;
    ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("{name}: reading component metadata"))?
        .validate(true)
        .encode()
        .with_context(|| format!("{name}: encoding component"))
}

/// The fields of a plugin manifest (`policies/plugins/*.toml`) the xtask
/// reads; the host reads the whole of it.
#[derive(serde::Deserialize)]
pub(crate) struct Manifest {
    pub(crate) name: String,
    /// The component's file name, in `target/plugins`.
    pub(crate) component: String,
    /// `sha256:<hex>` of the reviewed component.
    pub(crate) digest: String,
    /// The WASI interfaces tolerated (Python and JavaScript plugins).
    #[serde(default)]
    pub(crate) wasi: BTreeSet<String>,
}

impl Manifest {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The WASI interfaces a manifest tolerates (its `wasi` list).
fn tolerated_wasi(manifest: &Path) -> Result<Option<BTreeSet<String>>> {
    if !manifest.exists() {
        return Ok(None);
    }
    Ok(Some(Manifest::read(manifest)?.wasi))
}

/// Refuses a component whose imports its language and manifest do not
/// allow: a Rust plugin imports nothing but [`ALLOWED_IMPORTS`]; a Python or
/// JavaScript plugin may import WASI too, exactly the interfaces its
/// manifest's `wasi` list names (a fixture without a manifest: any `wasi:*`,
/// which the host checks against the manifest a test loads it with).
fn check_imports(plugin: &PluginCrate, imports: &[String], manifest: &Path) -> Result<()> {
    let other: Vec<&String> = imports
        .iter()
        .filter(|i| !ALLOWED_IMPORTS.contains(&i.as_str()))
        .collect();
    if plugin.language == Language::Rust {
        if let Some(bad) = other.first() {
            bail!(
                "plugin {} imports `{bad}`; Rust plugins may import only {ALLOWED_IMPORTS:?}",
                plugin.name
            );
        }
        return Ok(());
    }
    if let Some(bad) = other.iter().find(|i| !i.starts_with("wasi:")) {
        bail!(
            "plugin {} imports `{bad}`, which is neither cloister:feature nor WASI",
            plugin.name
        );
    }
    let Some(tolerated) = tolerated_wasi(manifest)? else {
        eprintln!(
            "xtask: {}: no manifest; its WASI imports are checked when a test loads it",
            plugin.name
        );
        return Ok(());
    };
    let imported: BTreeSet<String> = other.into_iter().cloned().collect();
    let unlisted: Vec<_> = imported.difference(&tolerated).collect();
    let unused: Vec<_> = tolerated.difference(&imported).collect();
    ensure!(
        unlisted.is_empty() && unused.is_empty(),
        "plugin {}: {} must list exactly the WASI interfaces the component imports, \
         as `wasi = {imported:?}`; not listed: {unlisted:?}; listed, not imported: {unused:?}",
        plugin.name,
        manifest.display()
    );
    Ok(())
}

/// Rewrites the `digest = "..."` line of a manifest, keeping everything else.
fn update_digest(manifest: &Path, digest: &str) -> Result<()> {
    let text = fs::read_to_string(manifest)?;
    let mut found = false;
    let updated: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("digest") && line.contains('=') && !found {
                found = true;
                format!("digest = \"{digest}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    ensure!(found, "{} has no `digest = ` line", manifest.display());
    let updated = updated.join("\n") + "\n";
    if updated != text {
        fs::write(manifest, updated)?;
        eprintln!("xtask: updated digest in {}", manifest.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_digest_rewrites_only_the_digest_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.toml");
        fs::write(
            &path,
            "# keep me\nname = \"x\"\ndigest = \"sha256:00\" # old\n[limits]\n",
        )
        .expect("write");
        update_digest(&path, "sha256:ff").expect("updated");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "# keep me\nname = \"x\"\ndigest = \"sha256:ff\"\n[limits]\n"
        );
        fs::write(&path, "name = \"x\"\n").expect("write");
        assert!(
            update_digest(&path, "sha256:ff").is_err(),
            "a manifest without digest is an error"
        );
    }
}
