//! Plugin manifests: the reviewed statement of what one component may do.
//!
//! A manifest lives in `policies/plugins/<name>.toml`. The host refuses a
//! component whose bytes do not hash to the manifest's digest or whose
//! imports exceed the interfaces the manifest grants.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
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
    /// Whether `wasi:*` imports are allowed. They are served by an empty
    /// context: no files, sockets, environment, arguments or clocks of note.
    #[serde(default)]
    pub wasi: bool,
    /// Resource limits of one request.
    pub limits: Limits,
    /// Inference budget of one request; required when `inference` is imported.
    pub inference: Option<InferenceGrant>,
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
    /// Most bytes of text in the response.
    pub max_output_bytes: u64,
}

impl Limits {
    /// The wall-time limit.
    pub fn time(&self) -> Duration {
        Duration::from_millis(self.time_ms)
    }
}

/// What one request may ask of the inference engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InferenceGrant {
    /// Models the plugin may name.
    pub models: BTreeSet<String>,
    /// Most tokens one call may generate.
    pub max_tokens_per_call: u32,
    /// Most tokens all calls of one request may generate together.
    pub max_tokens_per_request: u32,
    /// Most calls in one request.
    pub max_calls_per_request: u32,
    /// Most bytes of prompt text in one call.
    pub max_prompt_bytes: u64,
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
    /// `inference` is imported without a budget.
    #[error("manifest grants inference but has no [inference] budget")]
    MissingInferenceBudget,
    /// A limit is zero or a per-call budget exceeds the per-request one.
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
        if self.grants(crate::capabilities::inference::INTERFACE) {
            let grant = self
                .inference
                .as_ref()
                .ok_or(ManifestError::MissingInferenceBudget)?;
            if grant.max_tokens_per_call == 0
                || grant.max_tokens_per_call > grant.max_tokens_per_request
            {
                return Err(ManifestError::BadLimit("max-tokens-per-call"));
            }
            if grant.max_calls_per_request == 0 {
                return Err(ManifestError::BadLimit("max-calls-per-request"));
            }
        }
        Ok(())
    }

    /// Whether the manifest grants the interface.
    pub fn grants(&self, interface: &str) -> bool {
        self.imports.contains(interface)
    }

    /// Whether the manifest allows a component to import `name`.
    pub fn allows_import(&self, name: &str) -> bool {
        self.grants(name) || (self.wasi && name.starts_with("wasi:"))
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
        assert_eq!(parsed.inference.map(|g| g.max_calls_per_request), Some(2));
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        let cases = [
            (manifest(""), "no [inference] budget"),
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
