//! The plugin runtime: one engine, one compiled `InstancePre` per component
//! digest, and a fresh store for every request.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_ratls::Cancellation;
use serde::{Deserialize, Serialize};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig, ProfilingStrategy, Store, Trap, UpdateDeadline,
};

use crate::capabilities::{Capabilities, Grants, InstanceContext, InstanceState};
use crate::convert::json::{self, REQUEST_BOUNDS};
use crate::convert::{self, FEATURE_ERROR_CASES};
use crate::digest::Digest;
use crate::error::{LoadError, RunError};
use crate::limits::{LimitHit, Limiter};
use crate::manifest::{PluginManifest, TYPES_INTERFACE};
use crate::policy::PolicySet;

/// The function every feature component exports: `run: func(input: T) ->
/// result<U, feature-error>`, with types `T` and `U` of its own WIT world.
pub const RUN_EXPORT: &str = "run";

/// Engine-wide settings, from the `[runtime]` table of the host config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Pre-allocate instance slots (fast instantiation, bounded concurrency).
    pub pooling: bool,
    /// Most requests served at once; with pooling, the number of slots.
    pub max_concurrent_instances: u32,
    /// Largest linear memory any manifest may ask for (the pool's slot size).
    pub max_memory_bytes: u64,
    /// How often running guest code stops to check its wall-time limit and
    /// whether its caller gave up: the granularity of both.
    pub epoch_tick_ms: u64,
    /// Native stack a guest may use before it traps.
    pub max_wasm_stack_bytes: usize,
    /// With pooling, how many bytes of each linear memory and table an ended
    /// instance may leave resident in its slot. Those pages are still reset
    /// to their initial contents (only the ones the instance wrote, found with
    /// Linux's `PAGEMAP_SCAN` where the kernel has it), but not handed back to
    /// the kernel, so the next request neither pays for `madvise` nor
    /// page-faults them in again. Costs up to this much RSS per idle slot.
    pub keep_resident_bytes: u64,
    /// Names compiled plugin code for a native profiler (`perf`).
    pub profiler: Profiler,
    /// DEVELOPMENT ONLY: a folder where compiled plugin code is kept and
    /// reused by later engines (tests, the demo), which otherwise spend
    /// tens of seconds compiling a Python or JavaScript component every
    /// time. What the folder holds is native code run without any check,
    /// from outside the launch measurement: the host refuses it with real
    /// attestation ([`LoadError::CompileCacheOutsideSimulation`]). A relative
    /// path is taken from the working directory.
    pub compile_cache: Option<PathBuf>,
}

/// How compiled guest code is made visible to native profilers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profiler {
    /// Nothing is written (production).
    #[default]
    None,
    /// `/tmp/perf-<pid>.map`, which `perf report` reads to name guest functions.
    PerfMap,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            pooling: true,
            max_concurrent_instances: 64,
            max_memory_bytes: 256 << 20,
            epoch_tick_ms: 10,
            max_wasm_stack_bytes: 512 << 10,
            keep_resident_bytes: 2 << 20,
            profiler: Profiler::None,
            compile_cache: None,
        }
    }
}

/// A plugin ready to serve.
struct LoadedPlugin {
    manifest: Arc<PluginManifest>,
    /// `manifest.name`, shared with every request's state.
    name: Arc<str>,
    /// `manifest.grants`, shared with every request's state.
    grants: Arc<Grants>,
    entry: Entry,
}

/// A compiled component ready to instantiate, and its `run` with the types
/// the client's JSON is checked against.
#[derive(Clone)]
struct Entry {
    pre: InstancePre<InstanceState>,
    run: ComponentExportIndex,
    /// The type of `run`'s one parameter.
    input: Type,
}

/// Advances the engine's epoch on a fixed tick; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cloister-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs feature components, each request in a fresh, limited instance.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    capabilities: Capabilities,
    plugins: BTreeMap<String, LoadedPlugin>,
    compiled: HashMap<Digest, Entry>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// An engine with no plugins yet.
    pub fn new(config: RuntimeConfig, capabilities: Capabilities) -> Result<Self, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack_bytes)
            .profiler(match config.profiler {
                Profiler::None => ProfilingStrategy::None,
                Profiler::PerfMap => ProfilingStrategy::PerfMap,
            });
        if let Some(dir) = &config.compile_cache {
            let dir = std::path::absolute(dir).map_err(|e| {
                LoadError::Engine(format!("compile cache `{}`: {e}", dir.display()))
            })?;
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            wasm.cache(Some(Cache::new(cache).map_err(engine_error)?));
        }
        let engine = if config.pooling {
            // Resident pages pay off only when PAGEMAP_SCAN (Linux 6.7+) finds
            // the few an instance wrote; without it wasmtime would memset the
            // whole kept range of every slot, so then nothing is kept.
            Engine::new(
                wasm.clone()
                    .allocation_strategy(pooling(&config, Enabled::Yes)),
            )
            .or_else(|_| Engine::new(wasm.allocation_strategy(pooling(&config, Enabled::No))))
        } else {
            Engine::new(&wasm)
        }
        .map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        Capabilities::add_to_linker(&mut linker).map_err(engine_error)?;
        // Types only: what every feature's `run` returns on failure.
        linker.instance(TYPES_INTERFACE).map_err(engine_error)?;
        let ticker = EpochTicker::start(
            engine.clone(),
            Duration::from_millis(config.epoch_tick_ms.max(1)),
        );
        Ok(Self {
            engine,
            linker,
            capabilities,
            plugins: BTreeMap::new(),
            compiled: HashMap::new(),
            _ticker: ticker,
        })
    }

    /// Loads every plugin of a policy set, reading components from `plugin_dir`.
    pub fn load_policy_set(
        &mut self,
        policies: &PolicySet,
        plugin_dir: &cap_std::fs::Dir,
    ) -> Result<(), LoadError> {
        for manifest in policies.manifests() {
            let bytes = plugin_dir
                .read(&manifest.component)
                .map_err(|source| LoadError::Io {
                    path: manifest.component.clone(),
                    source,
                })?;
            self.load_plugin(manifest.clone(), &bytes)?;
        }
        Ok(())
    }

    /// Verifies a component against its manifest, compiles it and makes it
    /// ready to serve. Nothing is kept if any check fails.
    pub fn load_plugin(
        &mut self,
        manifest: PluginManifest,
        component: &[u8],
    ) -> Result<(), LoadError> {
        let plugin = manifest.name.clone();
        if self.plugins.contains_key(&plugin) {
            return Err(LoadError::DuplicatePlugin(plugin));
        }
        let actual = Digest::of(component);
        if actual != manifest.digest {
            return Err(LoadError::DigestMismatch {
                plugin,
                expected: manifest.digest,
                actual,
            });
        }
        let entry = match self.compiled.get(&actual) {
            // A digest compiled for another manifest must still fit this one's grants.
            Some(entry) => {
                check_imports(&self.engine, entry.pre.component(), &manifest)?;
                entry.clone()
            }
            None => {
                let invalid = |e: wasmtime::Error| LoadError::InvalidComponent {
                    plugin: plugin.clone(),
                    reason: format!("{e:#}"),
                };
                let compiled = Component::new(&self.engine, component).map_err(invalid)?;
                check_imports(&self.engine, &compiled, &manifest)?;
                let input = entry_point(&self.engine, &compiled, &plugin)?;
                let run = compiled.get_export_index(None, RUN_EXPORT).ok_or_else(|| {
                    LoadError::MissingExport {
                        plugin: plugin.clone(),
                        export: RUN_EXPORT,
                    }
                })?;
                let pre = self.linker.instantiate_pre(&compiled).map_err(invalid)?;
                let entry = Entry { pre, run, input };
                self.compiled.insert(actual, entry.clone());
                entry
            }
        };
        tracing::info!(event = "plugin-loaded", plugin = %plugin, digest = %actual);
        let name = Arc::from(plugin.as_str());
        let grants = Arc::new(manifest.grants.clone());
        self.plugins.insert(
            plugin,
            LoadedPlugin {
                manifest: Arc::new(manifest),
                name,
                grants,
                entry,
            },
        );
        Ok(())
    }

    /// The manifests of the loaded plugins.
    pub fn manifests(&self) -> impl Iterator<Item = &PluginManifest> {
        self.plugins.values().map(|p| &*p.manifest)
    }

    /// Whether a plugin of this name is loaded.
    pub fn serves(&self, feature: &str) -> bool {
        self.plugins.contains_key(feature)
    }

    /// Serves one request in a fresh instance of the plugin its feature
    /// names. The instance and all its memory are dropped before this
    /// returns.
    pub fn handle(&self, request: &FeatureRequest) -> Result<FeatureResponse, RunError> {
        self.run(request.feature(), &request.input)
    }

    /// As [`Runtime::handle`], stopping early with [`RunError::Cancelled`]
    /// once `cancel` is set.
    pub fn handle_cancellable(
        &self,
        request: &FeatureRequest,
        cancel: &Cancellation,
    ) -> Result<FeatureResponse, RunError> {
        self.run_cancellable(request.feature(), &request.input, cancel)
    }

    /// Serves one input with a named plugin.
    pub fn run(
        &self,
        plugin: &str,
        input: &serde_json::Value,
    ) -> Result<FeatureResponse, RunError> {
        self.run_cancellable(plugin, input, &Cancellation::new())
    }

    /// Serves one input with a named plugin until it ends, its wall-time
    /// limit passes, or `cancel` is set (its caller gave up).
    ///
    /// The input is checked against the type of the plugin's `run` before
    /// any of its code runs ([`RunError::InvalidInput`] names the first
    /// value that does not fit); the output is returned as JSON
    /// ([`crate::convert::json`] gives the form of each type).
    ///
    /// Guest code is stopped at the next epoch tick after the deadline or
    /// the cancellation; host calls end by then too (inference is refused,
    /// WASI sleeps end at the deadline); and an answer that arrives after
    /// the deadline is refused as [`RunError::TimeLimit`] all the same.
    pub fn run_cancellable(
        &self,
        plugin: &str,
        input: &serde_json::Value,
        cancel: &Cancellation,
    ) -> Result<FeatureResponse, RunError> {
        let loaded = self
            .plugins
            .get(plugin)
            .ok_or_else(|| RunError::UnknownPlugin(plugin.to_owned()))?;
        let input = json::to_val(&loaded.entry.input, input, &REQUEST_BOUNDS, "input").map_err(
            |error| RunError::InvalidInput {
                plugin: plugin.to_owned(),
                error,
            },
        )?;
        let manifest = &loaded.manifest;
        let started = Instant::now();
        let deadline = started + manifest.limits.time();
        let context = InstanceContext {
            plugin: &loaded.name,
            grants: &loaded.grants,
            started,
            deadline,
            cancel,
        };
        let limiter = Limiter::new(manifest.limits.memory_bytes, manifest.limits.table_elements);
        let mut store = Store::new(
            &self.engine,
            self.capabilities.instantiate(context, limiter),
        );
        store.limiter(|state| &mut state.limiter);
        // Every tick, guest code stops to check the wall clock and the
        // caller: the limit holds to within one tick.
        let watched = cancel.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if watched.is_cancelled() {
                return Err(Cancelled.into());
            }
            if Instant::now() >= deadline {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let mut results = [Val::Bool(false)];
        let outcome = loaded
            .entry
            .pre
            .instantiate(&mut store)
            .and_then(|instance| {
                let run = instance
                    .get_func(&mut store, loaded.entry.run)
                    .ok_or_else(|| wasmtime::format_err!("`{RUN_EXPORT}` is not a function"))?;
                run.call(&mut store, &[input], &mut results)
            })
            .map(|()| match results {
                [Val::Result(result)] => result,
                // The load check saw a `result`; wasmtime lifts that type.
                _ => Err(None),
            });
        let result = match outcome {
            _ if cancel.is_cancelled() => Err(RunError::Cancelled {
                plugin: plugin.to_owned(),
            }),
            Ok(_) if Instant::now() > deadline => Err(RunError::TimeLimit {
                plugin: plugin.to_owned(),
                limit_ms: manifest.limits.time_ms,
            }),
            Ok(Ok(output)) => {
                let output = match output {
                    Some(value) => json::to_json(&value, "output"),
                    None => Ok(serde_json::Value::Null),
                };
                match output {
                    Ok(output) => within_output_limit(
                        Ok(FeatureResponse::new(plugin, output)),
                        plugin,
                        manifest,
                    ),
                    Err(error) => Err(RunError::InvalidOutput {
                        plugin: plugin.to_owned(),
                        error,
                    }),
                }
            }
            Ok(Err(error)) => {
                let budget = store.data_mut().inference().budget();
                match error.and_then(|e| convert::feature_error(&e, budget)) {
                    Some(error) => within_output_limit(
                        Err(RunError::Feature {
                            plugin: plugin.to_owned(),
                            error,
                        }),
                        plugin,
                        manifest,
                    ),
                    None => Err(RunError::Trap {
                        plugin: plugin.to_owned(),
                        reason: "`run` returned an error that is no `feature-error`".into(),
                    }),
                }
            }
            Err(error) => Err(classify_failure(&error, store.data().limiter.hit, manifest)),
        };

        let mut state = store.into_data();
        let discarded = state.wasi().discarded_output_bytes();
        if discarded > 0 {
            tracing::info!(event = "plugin-output-discarded", plugin = %plugin, bytes = discarded);
        }
        tracing::info!(
            event = "request-completed",
            plugin = %plugin,
            outcome = outcome_label(&result),
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            generated_tokens = u64::from(state.inference().budget().tokens_used()),
        );
        result
    }
}

/// The plugin's answer, unless what the client would receive for it (the
/// JSON of the response or of the plugin's error, envelope and all: empty
/// items and error strings count as much as text) is larger than the
/// manifest's `max-output-bytes`.
fn within_output_limit(
    result: Result<FeatureResponse, RunError>,
    plugin: &str,
    manifest: &PluginManifest,
) -> Result<FeatureResponse, RunError> {
    let encoded = match &result {
        Ok(response) => encoded_len(&Ok::<_, RequestError>(response)),
        Err(RunError::Feature { error, .. }) => encoded_len(&Err::<FeatureResponse, _>(
            RequestError::Feature(error.clone()),
        )),
        Err(_) => return result,
    };
    if encoded > manifest.limits.max_output_bytes {
        return Err(RunError::OutputTooLarge {
            plugin: plugin.to_owned(),
            limit: manifest.limits.max_output_bytes,
            actual: encoded,
        });
    }
    result
}

/// Bytes of `value` as JSON, counted without keeping them.
fn encoded_len(value: &impl Serialize) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // Unencodable: it could not be sent at all.
        Err(_) => u64::MAX,
    }
}

/// The error an epoch check returns once the request's caller gave up.
#[derive(Debug, thiserror::Error)]
#[error("the caller gave up")]
struct Cancelled;

/// Core instances (and at most as many tables) one component may hold in a
/// pool slot: a Rust plugin has a few, a componentize-py 0.25 component 14
/// (CPython, libc, its shims and the WASI adapter, linked together), a
/// componentize-js one fewer.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// The pooling allocator sized by `config`; `pagemap_scan` decides whether
/// memories and tables keep pages resident between instances.
fn pooling(config: &RuntimeConfig, pagemap_scan: Enabled) -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::default();
    let slots = config.max_concurrent_instances;
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
        .pagemap_scan(pagemap_scan);
    if pagemap_scan == Enabled::Yes {
        let keep_resident = usize::try_from(config.keep_resident_bytes).unwrap_or(usize::MAX);
        pool.linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident);
    }
    InstanceAllocationStrategy::Pooling(pool)
}

/// Refuses a component that imports anything its manifest does not grant.
fn check_imports(
    engine: &Engine,
    component: &Component,
    manifest: &PluginManifest,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    if let Some((import, _)) = ty
        .imports(engine)
        .find(|(name, _)| !manifest.allows_import(name))
    {
        return Err(LoadError::ImportNotGranted {
            plugin: manifest.name.clone(),
            import: import.to_owned(),
        });
    }
    Ok(())
}

/// The input type of the component's `run`, after checking that `run` is
/// `func(input: T) -> result<U, feature-error>` with `T` and `U` types JSON
/// can carry.
pub(crate) fn entry_point(
    engine: &Engine,
    component: &Component,
    plugin: &str,
) -> Result<Type, LoadError> {
    let bad = |reason: String| LoadError::BadEntryPoint {
        plugin: plugin.to_owned(),
        reason,
    };
    let Some(ComponentItem::ComponentFunc(run)) = component
        .component_type()
        .get_export(engine, RUN_EXPORT)
        .map(|export| export.ty)
    else {
        return Err(LoadError::MissingExport {
            plugin: plugin.to_owned(),
            export: RUN_EXPORT,
        });
    };
    let params: Vec<Type> = run.params().map(|(_, ty)| ty).collect();
    let results: Vec<Type> = run.results().collect();
    let ([input], [Type::Result(result)]) = (params.as_slice(), results.as_slice()) else {
        return Err(bad(format!(
            "it takes {} parameters and returns {} values",
            params.len(),
            results.len()
        )));
    };
    let is_feature_error = match result.err() {
        Some(Type::Variant(variant)) => variant.cases().map(|c| c.name).eq(FEATURE_ERROR_CASES),
        _ => false,
    };
    if !is_feature_error {
        return Err(bad(
            "its error type is not `cloister:feature/types.feature-error`".into(),
        ));
    }
    json::check_type(input, "input").map_err(|e| bad(e.to_string()))?;
    if let Some(output) = result.ok() {
        json::check_type(&output, "output").map_err(|e| bad(e.to_string()))?;
    }
    Ok(input.clone())
}

/// Turns a wasmtime failure into the request's typed error.
fn classify_failure(
    error: &wasmtime::Error,
    hit: Option<LimitHit>,
    manifest: &PluginManifest,
) -> RunError {
    let plugin = manifest.name.clone();
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return RunError::AtCapacity;
    }
    if error.downcast_ref::<Cancelled>().is_some() {
        return RunError::Cancelled { plugin };
    }
    match (hit, error.downcast_ref::<Trap>()) {
        (_, Some(Trap::Interrupt)) => RunError::TimeLimit {
            plugin,
            limit_ms: manifest.limits.time_ms,
        },
        (_, Some(Trap::StackOverflow)) => RunError::StackOverflow { plugin },
        (Some(LimitHit::Memory), _) => RunError::MemoryLimit {
            plugin,
            limit_bytes: manifest.limits.memory_bytes,
        },
        (Some(LimitHit::Table), _) => RunError::TableLimit { plugin },
        (None, Some(trap)) => RunError::Trap {
            plugin,
            reason: trap.to_string(),
        },
        (None, None) => RunError::Trap {
            plugin,
            reason: format!("{error:#}"),
        },
    }
}

fn outcome_label(result: &Result<FeatureResponse, RunError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(RunError::UnknownPlugin(_)) => "unknown-plugin",
        Err(RunError::InvalidInput { .. }) => "invalid-input",
        Err(RunError::InvalidOutput { .. }) => "invalid-output",
        Err(RunError::AtCapacity) => "at-capacity",
        Err(RunError::TimeLimit { .. }) => "time-limit",
        Err(RunError::MemoryLimit { .. }) => "memory-limit",
        Err(RunError::TableLimit { .. }) => "table-limit",
        Err(RunError::StackOverflow { .. }) => "stack-overflow",
        Err(RunError::Trap { .. }) => "trap",
        Err(RunError::OutputTooLarge { .. }) => "output-too-large",
        Err(RunError::Feature { .. }) => "feature-error",
        Err(RunError::Cancelled { .. }) => "cancelled",
    }
}
