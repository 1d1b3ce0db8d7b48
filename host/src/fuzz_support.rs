//! The body of the `feature_json` fuzz target (`host/fuzz/`), shared with a
//! test that runs it over the seed corpus, so `cargo test` checks the same
//! properties without libFuzzer.

use cloister_api::FeatureRequest;
use wasmtime::component::Component;
use wasmtime::component::types::Type;
use wasmtime::{Config, Engine};

use crate::convert::json::{self, REQUEST_BOUNDS};
use crate::error::LoadError;
use crate::runtime::entry_point;

/// The input type of each feature, read from its component as the host
/// reads it when it loads the plugin.
pub struct FeatureInputs(Vec<(String, Type)>);

impl FeatureInputs {
    /// The input types of the components `(feature name, component bytes)`.
    ///
    /// # Errors
    /// When a component does not compile or its `run` is not a feature's.
    pub fn load(components: &[(&str, &[u8])]) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let inputs = components.iter().map(|&(feature, bytes)| {
            let component =
                Component::new(&engine, bytes).map_err(|e| LoadError::InvalidComponent {
                    plugin: feature.to_owned(),
                    reason: format!("{e:#}"),
                })?;
            Ok((
                feature.to_owned(),
                entry_point(&engine, &component, feature)?,
            ))
        });
        inputs.collect::<Result<_, _>>().map(Self)
    }
}

/// Reads `data` as the host reads a request from a session: a JSON
/// [`FeatureRequest`], whose input is converted to the named feature's
/// input type. A value that converts must convert back to JSON, and that
/// JSON to the same value (the conversion has a fixed point). Returns
/// whether the input converted.
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_feature_json(inputs: &FeatureInputs, data: &[u8]) -> bool {
    let Ok(request) = serde_json::from_slice::<FeatureRequest>(data) else {
        return false;
    };
    let Some((_, ty)) = inputs.0.iter().find(|(name, _)| name == request.feature()) else {
        return false;
    };
    let Ok(value) = json::to_val(ty, &request.input, &REQUEST_BOUNDS, "input") else {
        return false;
    };
    let written = json::to_json(&value, "input")
        .unwrap_or_else(|e| panic!("a value read from JSON cannot be written back: {e}"));
    let reread = json::to_val(ty, &written, &REQUEST_BOUNDS, "input")
        .unwrap_or_else(|e| panic!("JSON written from a value does not read back: {e}"));
    assert_eq!(reread, value, "JSON conversion has no fixed point");
    true
}
