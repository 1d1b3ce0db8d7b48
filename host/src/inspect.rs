//! What a reviewer checks of one plugin before any host runs it: its
//! component file against its manifest, without loading it. `cloister-host
//! inspect` prints it, and the reviewer's page (`cloister-release review`)
//! is built on it.

use cap_std::fs::Dir;
use wasmparser::{ComponentTypeRef, Payload};

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

/// The interfaces and functions a component imports (imported types left
/// out, as the engine lists them) and everything it exports: the names its
/// outermost component declares, read after validating it but without
/// compiling it (which takes tens of seconds for a Python or JavaScript
/// component).
///
/// # Errors
/// [`LoadError::InvalidComponent`]: the bytes are not a valid component.
pub fn component_interfaces(component: &[u8]) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let invalid = |error: wasmparser::BinaryReaderError| LoadError::InvalidComponent {
        plugin: "<inspected>".into(),
        reason: error.to_string(),
    };
    if !wasmparser::Parser::is_component(component) {
        return Err(LoadError::InvalidComponent {
            plugin: "<inspected>".into(),
            reason: "not a component (a core module or other bytes)".into(),
        });
    }
    wasmparser::Validator::new()
        .validate_all(component)
        .map_err(invalid)?;
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    // Nested modules and components open with `Version` and close with
    // `End`; only the outermost component's own sections count.
    let mut depth = 0_usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.map_err(invalid)? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(invalid)?;
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.push(export.map_err(invalid)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}
