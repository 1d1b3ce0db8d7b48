//! What a reviewer checks of one plugin before any host runs it: its
//! component file against its manifest, without loading it. `cloister-host
//! inspect` prints it, and the reviewer's page (`cloister-release review`)
//! is built on it.

use cap_std::fs::Dir;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::digest::Digest;
use crate::error::LoadError;
use crate::manifest::PluginManifest;

/// How a component file stands against its manifest's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentFile {
    /// Its SHA-256 is the manifest's digest: it is the reviewed component.
    Matches,
    /// It hashes to something else: the host would refuse it.
    DigestMismatch {
        /// What the file hashes to.
        actual: Digest,
    },
    /// It could not be read.
    Missing {
        /// Why.
        reason: String,
    },
}

/// One interface a component imports, and whether its manifest allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportUse {
    /// The interface, e.g. `cloister:feature/log@0.1.0`.
    pub name: String,
    /// Whether the manifest allows it (the host refuses the component otherwise).
    pub allowed: bool,
}

/// Reads the manifest's component from `plugin_dir` and checks its digest:
/// how the file stands, and its bytes when it could be read (whether or
/// not they match).
pub fn read_component(
    manifest: &PluginManifest,
    plugin_dir: &Dir,
) -> (ComponentFile, Option<Vec<u8>>) {
    match plugin_dir.read(&manifest.component) {
        Ok(bytes) => {
            let actual = Digest::of(&bytes);
            let file = if actual == manifest.digest {
                ComponentFile::Matches
            } else {
                ComponentFile::DigestMismatch { actual }
            };
            (file, Some(bytes))
        }
        Err(error) => (
            ComponentFile::Missing {
                reason: error.to_string(),
            },
            None,
        ),
    }
}

/// Each interface a component imports with the manifest's verdict: what
/// the host checks at load ([`PluginManifest::allows_import`]).
pub fn import_uses(
    manifest: &PluginManifest,
    imports: impl IntoIterator<Item = String>,
) -> Vec<ImportUse> {
    imports
        .into_iter()
        .map(|name| ImportUse {
            allowed: manifest.allows_import(&name),
            name,
        })
        .collect()
}

/// The interfaces a component imports and exports, as the host's engine
/// reads them (it compiles the component, but does not load it).
///
/// # Errors
/// [`LoadError::Engine`] or [`LoadError::InvalidComponent`].
pub fn component_interfaces(component: &[u8]) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    let compiled = Component::new(&engine, component).map_err(|e| LoadError::InvalidComponent {
        plugin: "<inspected>".into(),
        reason: format!("{e:#}"),
    })?;
    let ty = compiled.component_type();
    let imports = ty
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = ty
        .exports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    Ok((imports, exports))
}
