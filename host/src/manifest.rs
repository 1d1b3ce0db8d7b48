//! Plugin manifests: the reviewed statement of what one component may do.
//!
//! A manifest lives in `policies/plugins/<name>.toml`. The host refuses a
//! component whose bytes do not hash to the manifest's digest or whose
//! imports exceed the interfaces the manifest grants.
//!
//! Besides the keys below, a manifest holds each capability's own section
//! ([`Grants`]: `[inference]`, `wasi = [...]`), which that capability parses
//! and checks ([`crate::capabilities`]).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::capabilities::{Capabilities, GrantError, Grants};
use crate::digest::Digest;

/// The shared interface that declares `feature-error`: every feature's
/// world uses it, and it grants nothing.
pub const TYPES_INTERFACE: &str = "cloister:feature/types@0.1.0";

/// A plugin's manifest.
///
/// Unknown keys are refused: the ones named here are taken first, and
/// [`Grants`], which takes the rest, refuses any it does not know.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "WrittenManifest")]
pub struct PluginManifest {
    /// Feature name; requests name it (`summarise`).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// File name of the component in the plugin directory.
    pub component: String,
    /// SHA-256 of the component file, as reviewed and logged in the ledger.
    pub digest: Digest,
    /// WIT interfaces the component may import, e.g. `cloister:feature/log@0.1.0`.
    pub imports: BTreeSet<String>,
    /// Resource limits of one request.
    pub limits: Limits,
    /// Every capability's section (the inference budget, the WASI list).
    pub grants: Grants,
}

/// A manifest as written: the keys of [`PluginManifest`], and the
/// capabilities' sections among the rest.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WrittenManifest {
    name: String,
    version: String,
    component: String,
    digest: Digest,
    imports: BTreeSet<String>,
    limits: Limits,
    #[serde(flatten)]
    sections: toml::Table,
}

impl TryFrom<WrittenManifest> for PluginManifest {
    type Error = toml::de::Error;

    fn try_from(written: WrittenManifest) -> Result<Self, Self::Error> {
        Ok(Self {
            name: written.name,
            version: written.version,
            component: written.component,
            digest: written.digest,
            imports: written.imports,
            limits: written.limits,
            grants: toml::Value::Table(written.sections).try_into()?,
        })
    }
}

/// Limits on one instance, for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Limits {
    /// Most bytes of linear memory.
    pub memory_bytes: u64,
    /// Most table elements.
    pub table_elements: u32,
    /// Wall time of the whole request, inference included.
    pub time_ms: u64,
    /// Most bytes of the response as the client receives it (JSON, envelope
    /// and error strings included).
    pub max_output_bytes: u64,
}

impl Limits {
    /// The wall-time limit.
    pub fn time(&self) -> Duration {
        Duration::from_millis(self.time_ms)
    }
}

/// A manifest that is inconsistent in itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// TOML syntax or an unknown/missing key.
    #[error("manifest is not valid TOML for a plugin manifest: {0}")]
    Syntax(String),
    /// An import names no interface this host provides.
    #[error("manifest grants `{0}`, which this host does not provide")]
    UnknownInterface(String),
    /// A capability's section does not fit what the manifest grants.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// A limit is zero.
    #[error("manifest limit `{0}` is out of range")]
    BadLimit(&'static str),
    /// The component file name could escape the plugin directory.
    #[error("component file name `{0}` must be a plain file name")]
    BadComponentName(String),
}

impl PluginManifest {
    /// Parses and validates a manifest. `provided` lists the interfaces the
    /// host's capabilities serve.
    pub fn parse(text: &str, provided: &[&str]) -> Result<Self, ManifestError> {
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.validate(provided)?;
        Ok(manifest)
    }

    fn validate(&self, provided: &[&str]) -> Result<(), ManifestError> {
        if let Some(unknown) = self
            .imports
            .iter()
            .find(|i| !provided.contains(&i.as_str()))
        {
            return Err(ManifestError::UnknownInterface(unknown.clone()));
        }
        if self.component.is_empty()
            || self.component.contains(['/', '\\'])
            || self.component.starts_with('.')
        {
            return Err(ManifestError::BadComponentName(self.component.clone()));
        }
        let limits = &self.limits;
        for (name, value) in [
            ("memory-bytes", limits.memory_bytes),
            ("table-elements", u64::from(limits.table_elements)),
            ("time-ms", limits.time_ms),
            ("max-output-bytes", limits.max_output_bytes),
        ] {
            if value == 0 {
                return Err(ManifestError::BadLimit(name));
            }
        }
        Capabilities::check_grants(&self.grants, &self.imports)?;
        Ok(())
    }

    /// Whether the manifest grants the interface by name.
    pub fn grants(&self, interface: &str) -> bool {
        self.imports.contains(interface)
    }

    /// Whether the manifest allows a component to import `name`: granted by
    /// name, or allowed by a capability's section (listed under `wasi`).
    /// [`TYPES_INTERFACE`] is always allowed: it holds types, no functions.
    pub fn allows_import(&self, name: &str) -> bool {
        name == TYPES_INTERFACE
            || self.grants(name)
            || Capabilities::allows_import(&self.grants, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDED: &[&str] = &[
        "cloister:feature/inference@0.1.0",
        "cloister:feature/log@0.1.0",
    ];

    fn manifest(extra: &str) -> String {
        format!(
            r#"
name = "summarise"
version = "0.1.0"
component = "summarise.wasm"
digest = "sha256:{zeros}"
imports = ["cloister:feature/inference@0.1.0", "cloister:feature/log@0.1.0"]
[limits]
memory-bytes = 16777216
table-elements = 1000
time-ms = 1000
max-output-bytes = 4096
{extra}"#,
            zeros = "00".repeat(32)
        )
    }

    const BUDGET: &str = r#"
[inference]
models = ["m"]
max-tokens-per-call = 10
max-tokens-per-request = 20
max-calls-per-request = 2
max-prompt-bytes = 100
"#;

    #[test]
    fn parses_a_complete_manifest() {
        let parsed = PluginManifest::parse(&manifest(BUDGET), PROVIDED).expect("valid manifest");
        assert!(parsed.allows_import("cloister:feature/log@0.1.0"));
        assert!(!parsed.allows_import("wasi:cli/environment@0.2.0"));
        assert!(
            parsed.allows_import(TYPES_INTERFACE),
            "types only: every feature's world uses it"
        );
        assert_eq!(
            parsed.grants.inference.map(|g| g.max_calls_per_request),
            Some(2)
        );
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        let cases = [
            (manifest(""), "no [inference] section"),
            (
                manifest(&BUDGET.replace("max-tokens-per-call = 10", "max-tokens-per-call = 30")),
                "max-tokens-per-call",
            ),
            (
                manifest(BUDGET).replace("time-ms = 1000", "time-ms = 0"),
                "time-ms",
            ),
            (
                manifest(BUDGET).replace("\"summarise.wasm\"", "\"../x.wasm\""),
                "plain file name",
            ),
            (
                manifest(BUDGET).replace("log@0.1.0\"]", "log@0.1.0\", \"evil:net/socket\"]"),
                "evil:net/socket",
            ),
            (
                manifest(&format!("{BUDGET}\nsurprise = 1")),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let err = PluginManifest::parse(&text, PROVIDED)
                .expect_err(expected)
                .to_string();
            assert!(
                err.contains(expected),
                "`{err}` should mention `{expected}`"
            );
        }
    }
}
