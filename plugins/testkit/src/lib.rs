//! A test kit for feature components.
//!
//! It runs a built component in the real [`cloister_host::Runtime`] — same
//! linker, limits, import checks and log filter as production — but with a
//! scripted model, so a feature team can test prompts, parsing and error
//! handling in a few lines, without model weights and in milliseconds.
//!
//! # Main types
//!
//! * [`TestKit`]: [`TestKit::for_plugin`] uses the plugin's reviewed manifest
//!   and the real log allow-list from `policies/`, so a stale digest or an
//!   event missing from the allow-list fails the test;
//!   [`TestKit::for_component`] takes any component file and grants it
//!   generous limits. [`TestKitBuilder`] sets the scripted answers, limits,
//!   grants or another engine.
//! * [`ScriptedBackend`] and [`Prompted`]: the scripted model (answers, and
//!   [`bag_of_words`] embeddings unless [`TestKitBuilder::embed_with`] says
//!   otherwise) and the prompts and texts it was given.
//! * [`KitError`]: why a kit could not be set up (a component not built yet
//!   says how to build it).
//!
//! * [`scenario`]: a plugin's tests as data (`plugins/<name>/tests/*.toml`:
//!   input, scripted replies, expected output or error, expected events),
//!   the same for a plugin in any language; [`scenario_tests!`] is the
//!   one-line test target that runs them, and the `cloister-plugin-test`
//!   binary runs them for `cargo xtask test-plugin`.
//!
//! Components are read from `target/plugins` (or `$CLOISTER_PLUGIN_DIR`), where
//! `cargo xtask build-plugins` puts them; policies from `policies/` (or
//! `$CLOISTER_POLICY_DIR`). Their compiled code is kept in
//! `target/wasmtime-cache` (see [`compile_cache_dir`]), so a Python or
//! JavaScript component is compiled once, not once per test.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use cloister_api::Summary;
//! use cloister_inference::Role;
//! use cloister_plugin_testkit::TestKit;
//!
//! let kit = TestKit::for_plugin("summarise")?.reply("Ann asks to meet at noon.").build()?;
//! // Any feature's input, as the client sends it (JSON of its WIT input type).
//! let input = serde_json::json!({
//!     "messages": [{"sender": "Ann", "sent-at": 0, "text": "Noon?"}],
//!     "max-words": 0,
//! });
//! let response = kit.call(&input)?;
//! assert!(matches!(response.decode::<Summary>()?, Summary { messages_covered: 1, .. }));
//! assert!(kit.prompts()[0].text_of(Role::User).contains("Noon?"));
//! assert_eq!(kit.event_names(), ["request-started", "inference-completed", "request-finished"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod scenario;
mod scripted;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloister_api::{FeatureRequest, FeatureResponse};
use cloister_host::capabilities::inference::InferenceGrant;
use cloister_host::capabilities::{Capabilities, Grants};
use cloister_host::logfilter::{AllowList, FilterStats, LogFilter, LogRecord, MemorySink};
use cloister_host::manifest::Limits;
use cloister_host::{
    Digest, LoadError, PluginManifest, PolicySet, RunError, Runtime, RuntimeConfig,
};
use cloister_inference::{GenerateRequest, InferenceBackend, InferenceError};

pub use scripted::{BAG_OF_WORDS_WIDTH, Prompted, ScriptedBackend, bag_of_words};

/// The model name the kit's scripted backend answers to.
pub const SCRIPTED_MODEL: &str = "smollm2-135m-instruct";

/// Why a test kit could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The component file is missing: plugins are built by the xtask.
    #[error(
        "component `{path}` not found ({source}); build plugins first with `cargo xtask build-plugins`"
    )]
    MissingComponent {
        /// Where it was looked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The plugin's manifest is missing from the policy directory.
    #[error("no manifest for plugin `{0}` in policies/plugins")]
    MissingManifest(String),
    /// The host refused the component or its policies.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Where the reviewed policies are: `$CLOISTER_POLICY_DIR`, or the
/// workspace's `policies/`.
pub fn policy_dir() -> PathBuf {
    std::env::var_os("CLOISTER_POLICY_DIR")
        .map_or_else(|| workspace_root().join("policies"), PathBuf::from)
}

/// Where built components are: `$CLOISTER_PLUGIN_DIR`, or `target/plugins`.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map_or_else(|| workspace_root().join("target/plugins"), PathBuf::from)
}

/// Where the kit's engines keep compiled plugin code between tests and runs:
/// `target/wasmtime-cache` (the host's development-only `compile-cache`).
pub fn compile_cache_dir() -> PathBuf {
    workspace_root().join("target/wasmtime-cache")
}

/// The real engine with the project's model, from `$CLOISTER_MODEL_DIR` or
/// `target/models` (installed by `inference/fetch-model.sh`), one thread;
/// pass it to [`TestKitBuilder::engine`]. Only with the `real-model`
/// feature, which links the candle engine.
#[cfg(feature = "real-model")]
pub fn real_engine() -> Result<Arc<dyn InferenceBackend>, cloister_inference_candle::LoadError> {
    let config = cloister_inference_candle::CandleConfig {
        model_dir: std::env::var_os("CLOISTER_MODEL_DIR")
            .map_or_else(|| workspace_root().join("target/models"), PathBuf::from),
        threads: 1,
        ..cloister_inference_candle::CandleConfig::default()
    };
    Ok(Arc::new(cloister_inference_candle::CandleBackend::load(
        &config,
    )?))
}

/// A feature request from a JSON file under a plugin's `testdata/`.
pub fn request_from(path: impl AsRef<Path>) -> Result<FeatureRequest, String> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds a [`TestKit`].
pub struct TestKitBuilder {
    component: Vec<u8>,
    manifest: PluginManifest,
    allow_list: AllowList,
    backend: ScriptedBackend,
    embed: Option<Box<scripted::Embed>>,
    engine: Option<Arc<dyn InferenceBackend>>,
}

impl TestKitBuilder {
    /// Every inference call answers `text` (cut to the call's `max-tokens`).
    pub fn reply(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.backend = ScriptedBackend::new(move |_| Ok(text.clone()));
        self
    }

    /// Inference calls answer from `respond`, which sees the whole request.
    pub fn respond_with(
        mut self,
        respond: impl Fn(&GenerateRequest) -> Result<String, InferenceError> + Send + Sync + 'static,
    ) -> Self {
        self.backend = ScriptedBackend::new(respond);
        self
    }

    /// `embed` calls answer each text with `embed` (by default
    /// [`bag_of_words`]).
    pub fn embed_with(mut self, embed: impl Fn(&str) -> Vec<f32> + Send + Sync + 'static) -> Self {
        self.embed = Some(Box::new(embed));
        self
    }

    /// Serves inference from a real engine instead of the script (for
    /// end-to-end tests with a model); [`TestKit::prompts`] then stays empty.
    pub fn engine(mut self, engine: Arc<dyn InferenceBackend>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Replaces the manifest's limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.manifest.limits = limits;
        self
    }

    /// Replaces the manifest's inference budget.
    pub fn inference_grant(mut self, grant: InferenceGrant) -> Self {
        self.manifest.grants.inference = Some(grant);
        self
    }

    /// Replaces the log allow-list.
    pub fn allow_list(mut self, allow_list: AllowList) -> Self {
        self.allow_list = allow_list;
        self
    }

    /// Loads the component into a fresh runtime.
    pub fn build(self) -> Result<TestKit, KitError> {
        let sink = MemorySink::default();
        let filter = Arc::new(LogFilter::new(self.allow_list, Arc::new(sink.clone())));
        let backend = Arc::new(match self.embed {
            Some(embed) => self.backend.embedding_with(embed),
            None => self.backend,
        });
        let engine: Arc<dyn InferenceBackend> = match self.engine {
            Some(engine) => engine,
            None => backend.clone(),
        };
        let capabilities = Capabilities::new(engine, filter.clone());
        let config = RuntimeConfig {
            max_concurrent_instances: 4,
            compile_cache: Some(compile_cache_dir()),
            ..RuntimeConfig::default()
        };
        let mut runtime = Runtime::new(config, capabilities)?;
        runtime.load_plugin(self.manifest.clone(), &self.component)?;
        Ok(TestKit {
            runtime,
            manifest: self.manifest,
            sink,
            filter,
            backend,
        })
    }
}

/// A component loaded in a real runtime with a scripted model.
pub struct TestKit {
    runtime: Runtime,
    manifest: PluginManifest,
    sink: MemorySink,
    filter: Arc<LogFilter>,
    backend: Arc<ScriptedBackend>,
}

fn read_component(path: &Path) -> Result<Vec<u8>, KitError> {
    std::fs::read(path).map_err(|source| KitError::MissingComponent {
        path: path.to_owned(),
        source,
    })
}

impl TestKit {
    /// A bundled plugin with its reviewed manifest and the real allow-list
    /// (from [`policy_dir`] and [`plugin_dir`]).
    pub fn for_plugin(name: &str) -> Result<TestKitBuilder, KitError> {
        Self::for_plugin_in(&policy_dir(), &plugin_dir(), name)
    }

    /// Plugin `name` with its manifest and the allow-list from `policies`,
    /// its component from `components`.
    pub fn for_plugin_in(
        policies: &Path,
        components: &Path,
        name: &str,
    ) -> Result<TestKitBuilder, KitError> {
        let policies = PolicySet::load(&cloister_host::HostConfig::open_dir(policies)?)?;
        let manifest = policies
            .manifests()
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .ok_or_else(|| KitError::MissingManifest(name.to_owned()))?;
        let component = read_component(&components.join(&manifest.component))?;
        Ok(TestKitBuilder {
            component,
            manifest,
            allow_list: policies.allow_list().clone(),
            backend: ScriptedBackend::new(|_| Ok(String::new())),
            embed: None,
            engine: None,
        })
    }

    /// Any component file, granted the `cloister:feature` interfaces, generous
    /// limits and the real allow-list.
    pub fn for_component(path: impl AsRef<Path>) -> Result<TestKitBuilder, KitError> {
        let path = path.as_ref();
        let component = read_component(path)?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin")
            .to_owned();
        let manifest = PluginManifest {
            component: format!("{name}.wasm"),
            name,
            version: "0.0.0-test".into(),
            digest: Digest::of(&component),
            imports: Capabilities::interfaces()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            limits: Limits {
                memory_bytes: 64 << 20,
                table_elements: 20_000,
                time_ms: 10_000,
                max_output_bytes: 64 << 10,
            },
            grants: Grants {
                inference: Some(InferenceGrant {
                    models: BTreeSet::from([SCRIPTED_MODEL.to_owned()]),
                    max_tokens_per_call: 1024,
                    max_tokens_per_request: 8192,
                    max_calls_per_request: 16,
                    max_prompt_bytes: 64 << 10,
                }),
                ..Grants::default()
            },
        };
        let allow_list = PolicySet::load(&cloister_host::HostConfig::open_dir(&policy_dir())?)?
            .allow_list()
            .clone();
        Ok(TestKitBuilder {
            component,
            manifest,
            allow_list,
            backend: ScriptedBackend::new(|_| Ok(String::new())),
            embed: None,
            engine: None,
        })
    }

    /// Runs one request in a fresh instance; a request for another feature
    /// than the kit's is refused as the host refuses it
    /// ([`RunError::UnknownPlugin`]).
    pub fn run(&self, request: FeatureRequest) -> Result<FeatureResponse, RunError> {
        self.runtime.handle(&request)
    }

    /// Runs the plugin on `input` (JSON of its WIT input type) in a fresh
    /// instance.
    pub fn call(&self, input: &serde_json::Value) -> Result<FeatureResponse, RunError> {
        self.runtime.run(&self.manifest.name, input)
    }

    /// Every inference request the component made, in order.
    pub fn prompts(&self) -> Vec<Prompted> {
        self.backend.requests()
    }

    /// The texts of every embed call the component made, one list per call.
    pub fn embedded(&self) -> Vec<Vec<String>> {
        self.backend
            .embed_requests()
            .into_iter()
            .map(|request| request.texts)
            .collect()
    }

    /// Log records the allow-list admitted.
    pub fn events(&self) -> Vec<LogRecord> {
        self.sink.records()
    }

    /// Names of the admitted plugin events, in order.
    pub fn event_names(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .map(|r| r.event.into_owned())
            .collect()
    }

    /// What the log filter kept and dropped.
    pub fn filter_stats(&self) -> FilterStats {
        self.filter.stats()
    }

    /// The manifest in force.
    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }
}
