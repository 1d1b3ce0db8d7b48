//! A plugin's tests as data: one TOML file per scenario in
//! `plugins/<name>/tests/`, the same for a plugin written in Rust, Python
//! or JavaScript.
//!
//! Each scenario is one request under the real runtime with the scripted
//! model:
//!
//! ```toml
//! # What the client sends: JSON of the feature's WIT input type, written in TOML.
//! input = { text = "A draft." }
//! # What the scripted model answers, call by call (the last one repeats).
//! replies = ["Plain words."]
//!
//! [expect]
//! # The feature's output (JSON of its WIT output type), or `error = "code"`
//! # with the code the client would receive (`invalid-input`,
//! # `budget-exceeded`, `time-limit`...) and optionally `error-fields`.
//! output = { text = "Plain words." }
//! # Optional: the names of the log events the allow-list admitted, in order;
//! # the number of inference calls; strings every call's prompts hold.
//! events = ["request-finished"]
//! calls = 1
//! prompt-contains = ["A draft."]
//!
//! # Optional overrides of the manifest's limits and inference budget.
//! [limits]
//! time-ms = 2000
//! [inference]
//! max-tokens-per-call = 8
//! ```
//!
//! Failures name the scenario file, the field and what was expected and got.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use cloister_api::RequestError;
use serde::Deserialize;

use crate::{KitError, TestKit, TestKitBuilder};

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Scenario {
    /// What it shows, for the reader.
    #[serde(default)]
    pub description: Option<String>,
    /// The feature's input.
    pub input: toml::Value,
    /// The scripted model's replies in call order; the last repeats.
    #[serde(default)]
    pub replies: Vec<String>,
    /// What must come back.
    pub expect: Expect,
    /// Overrides of the manifest's `[limits]`.
    #[serde(default)]
    pub limits: Option<toml::Table>,
    /// Overrides of the manifest's `[inference]` budget.
    #[serde(default)]
    pub inference: Option<toml::Table>,
}

/// The `[expect]` table of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Expect {
    /// The feature's output.
    #[serde(default)]
    pub output: Option<toml::Value>,
    /// The error code the client would receive.
    #[serde(default)]
    pub error: Option<String>,
    /// Fields the error must carry (a subset of its JSON).
    #[serde(default)]
    pub error_fields: Option<toml::Table>,
    /// The admitted log events' names, in order.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// The number of inference calls.
    #[serde(default)]
    pub calls: Option<usize>,
    /// Strings that the prompts (all messages of all calls) must hold.
    #[serde(default)]
    pub prompt_contains: Vec<String>,
}

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario folder or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: not a scenario: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// The kit could not be set up (component not built, manifest missing).
    #[error("{path}: {source}")]
    Kit {
        /// The scenario file.
        path: PathBuf,
        /// Why.
        source: KitError,
    },
    /// The plugin did not do what the scenario expects.
    #[error("{path}: {field}: expected {expected}, got {got}")]
    Mismatch {
        /// The scenario file.
        path: PathBuf,
        /// Which expectation (`expect.output`, `expect.events`...).
        field: &'static str,
        /// What the scenario says.
        expected: String,
        /// What happened.
        got: String,
    },
}

/// The outcome of every scenario of a plugin.
pub struct Report {
    /// Each scenario file and its failure, if any.
    pub results: Vec<(PathBuf, Option<ScenarioError>)>,
}

impl Report {
    /// The failures.
    pub fn failures(&self) -> impl Iterator<Item = &ScenarioError> {
        self.results.iter().filter_map(|(_, error)| error.as_ref())
    }

    /// Whether there were scenarios and every one passed.
    pub fn passed(&self) -> bool {
        !self.results.is_empty() && self.failures().next().is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.results.is_empty() {
            return writeln!(f, "no scenarios (*.toml) found");
        }
        for (path, error) in &self.results {
            match error {
                None => writeln!(f, "ok      {}", path.display())?,
                Some(error) => writeln!(f, "FAILED  {error}")?,
            }
        }
        let failed = self.failures().count();
        writeln!(
            f,
            "{} scenarios, {} passed, {failed} failed",
            self.results.len(),
            self.results.len() - failed
        )
    }
}

/// The scenario files (`*.toml`) of `dir`, by name.
pub fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let io = |source| ScenarioError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one scenario file.
pub fn read(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_owned(),
        source,
    })?;
    let scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if scenario.expect.output.is_some() == scenario.expect.error.is_some() {
        return Err(ScenarioError::Invalid {
            path: path.to_owned(),
            reason: "[expect] needs exactly one of `output` and `error`".into(),
        });
    }
    Ok(scenario)
}

/// Runs every scenario of `dir` against plugin `name` as `kit` loads it
/// (called once per distinct set of overrides: a component is compiled once
/// for all scenarios that share their limits).
pub fn run_dir(
    dir: &Path,
    kit: impl Fn() -> Result<TestKitBuilder, KitError>,
) -> Result<Report, ScenarioError> {
    let mut kits: Vec<(Overrides, Loaded)> = Vec::new();
    let mut results = Vec::new();
    for path in scenario_files(dir)? {
        let outcome = read(&path).and_then(|scenario| {
            let overrides = (scenario.limits.clone(), scenario.inference.clone());
            let index = match kits.iter().position(|(o, _)| *o == overrides) {
                Some(index) => index,
                None => {
                    let loaded = Loaded::new(&path, kit(), &overrides)?;
                    kits.push((overrides, loaded));
                    kits.len() - 1
                }
            };
            kits[index].1.check(&path, &scenario)
        });
        results.push((path, outcome.err()));
    }
    Ok(Report { results })
}

/// Runs the scenarios of `plugins/<name>/tests/` of the plugin whose
/// package is at `package_dir` (with the policies and components the kit
/// finds by default), panicking with every failure: what
/// [`scenario_tests!`](crate::scenario_tests) expands to.
pub fn assert_scenarios(name: &str, package_dir: &Path) {
    let dir = package_dir.join("tests");
    let report = run_dir(&dir, || TestKit::for_plugin(name))
        .unwrap_or_else(|e| panic!("scenarios of {name}: {e}"));
    assert!(report.passed(), "scenarios of {name}:\n{report}");
}

/// The test target of a plugin package: one test running every scenario of
/// its `tests/` folder (`cloister_plugin_testkit::scenario_tests!();` in
/// `tests/it/main.rs`).
#[macro_export]
macro_rules! scenario_tests {
    () => {
        #[test]
        fn scenarios() {
            $crate::scenario::assert_scenarios(
                env!("CARGO_PKG_NAME"),
                ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            );
        }
    };
}

type Overrides = (Option<toml::Table>, Option<toml::Table>);

/// The scripted replies of the scenario running now.
#[derive(Default)]
struct Script {
    replies: Vec<String>,
    next: usize,
}

/// A kit loaded for scenarios sharing their overrides.
struct Loaded {
    kit: TestKit,
    script: Arc<Mutex<Script>>,
}

impl Loaded {
    fn new(
        path: &Path,
        builder: Result<TestKitBuilder, KitError>,
        (limits, inference): &Overrides,
    ) -> Result<Self, ScenarioError> {
        let kit_error = |source| ScenarioError::Kit {
            path: path.to_owned(),
            source,
        };
        let mut builder = builder.map_err(kit_error)?;
        if let Some(limits) = limits {
            builder.manifest.limits = overlay(path, "limits", &builder.manifest.limits, limits)?;
        }
        if let Some(inference) = inference {
            let Some(grant) = &builder.manifest.grants.inference else {
                return Err(ScenarioError::Invalid {
                    path: path.to_owned(),
                    reason: "[inference] overrides a budget the manifest does not grant".into(),
                });
            };
            builder.manifest.grants.inference = Some(overlay(path, "inference", grant, inference)?);
        }
        let script = Arc::new(Mutex::new(Script::default()));
        let replies = Arc::clone(&script);
        let kit = builder
            .respond_with(move |_| {
                let mut script = replies.lock().unwrap_or_else(PoisonError::into_inner);
                let reply = script
                    .replies
                    .get(script.next)
                    .or(script.replies.last())
                    .cloned()
                    .unwrap_or_default();
                script.next += 1;
                Ok(reply)
            })
            .build()
            .map_err(kit_error)?;
        Ok(Self { kit, script })
    }

    fn check(&self, path: &Path, scenario: &Scenario) -> Result<(), ScenarioError> {
        *self.script.lock().unwrap_or_else(PoisonError::into_inner) = Script {
            replies: scenario.replies.clone(),
            next: 0,
        };
        let (prompts_before, events_before) = (self.kit.prompts().len(), self.kit.events().len());
        let input = json_of(&scenario.input);
        // Errors as the client would receive them.
        let outcome = self.kit.call(&input).map_err(RequestError::from);
        let mismatch = |field, expected: String, got: String| ScenarioError::Mismatch {
            path: path.to_owned(),
            field,
            expected,
            got,
        };
        let expect = &scenario.expect;
        match (&outcome, &expect.output, &expect.error) {
            (Ok(response), Some(output), _) => {
                let output = json_of(output);
                if response.output != output {
                    return Err(mismatch(
                        "expect.output",
                        output.to_string(),
                        response.output.to_string(),
                    ));
                }
            }
            (Err(error), None, Some(code)) => {
                let sent = serde_json::to_value(error).unwrap_or_default();
                let got_code = sent["code"].as_str().unwrap_or_default();
                if got_code != code {
                    return Err(mismatch("expect.error", code.clone(), sent.to_string()));
                }
                for (key, value) in expect.error_fields.iter().flatten() {
                    let value = json_of(value);
                    if sent.get(key) != Some(&value) {
                        return Err(mismatch(
                            "expect.error-fields",
                            format!("{key} = {value}"),
                            sent.to_string(),
                        ));
                    }
                }
            }
            (Ok(response), None, code) => {
                return Err(mismatch(
                    "expect.error",
                    code.clone().unwrap_or_default(),
                    format!("output {}", response.output),
                ));
            }
            (Err(error), _, _) => {
                return Err(mismatch(
                    "expect.output",
                    expect
                        .output
                        .as_ref()
                        .map(|o| json_of(o).to_string())
                        .unwrap_or_default(),
                    format!("error: {error}"),
                ));
            }
        }
        let prompts = &self.kit.prompts()[prompts_before..];
        if let Some(calls) = expect.calls
            && prompts.len() != calls
        {
            return Err(mismatch(
                "expect.calls",
                calls.to_string(),
                prompts.len().to_string(),
            ));
        }
        let all_prompts: Vec<String> = prompts.iter().map(ToString::to_string).collect();
        let all_prompts = all_prompts.join("\n");
        if let Some(missing) = expect
            .prompt_contains
            .iter()
            .find(|s| !all_prompts.contains(s.as_str()))
        {
            return Err(mismatch(
                "expect.prompt-contains",
                format!("{missing:?} in the prompts"),
                format!("{all_prompts:?}"),
            ));
        }
        if let Some(events) = &expect.events {
            let got: Vec<String> = self.kit.events()[events_before..]
                .iter()
                .map(|r| r.event.clone().into_owned())
                .collect();
            if &got != events {
                return Err(mismatch(
                    "expect.events",
                    format!("{events:?}"),
                    format!("{got:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// `base` with the keys of `table` replaced (a scenario's overrides).
fn overlay<T: serde::Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    section: &str,
    base: &T,
    table: &toml::Table,
) -> Result<T, ScenarioError> {
    let invalid = |reason: String| ScenarioError::Invalid {
        path: path.to_owned(),
        reason: format!("[{section}]: {reason}"),
    };
    let mut merged = toml::Table::try_from(base).map_err(|e| invalid(e.to_string()))?;
    for (key, value) in table {
        merged.insert(key.clone(), value.clone());
    }
    merged.try_into().map_err(|e| invalid(e.to_string()))
}

/// TOML as the JSON the client sends (same shape; TOML has no null).
fn json_of(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
