//! A feature team's first plugin in each language, exactly as
//! `docs/writing-a-feature.md` tells it: the guide's `cargo xtask` commands
//! run (with NAME substituted) in a copy of the tree, the plugins released
//! in a demo ledger and served by the real host, `cloister run` reaching
//! each of them, and nothing outside the new plugins' folders and manifests
//! changed. Every other command of the guide must be one that this test's
//! chain ran ([`Chain::ran`]) or that CI runs (`.ci/run`).
//!
//! The copy lives at `target/templates-e2e/tree` (made afresh each run): the
//! shared WIT, the template, the policies without the bundled plugins'
//! manifests, the plugin SDK and the test kit as workspace members, the
//! workspace manifest listing `plugins/*` with every other path dependency
//! pointing into this tree, and this tree's Cargo.lock, settled for the copy
//! before anything is made. Its `target/wasm` and `target/tools` are the
//! suite's (links): the Rust plugin's build reuses the std and registry
//! crates `build-plugins` compiled for the suite (`build-plugins` gives
//! flags to the plugin crate only, so nothing else depends on where the tree
//! is; a folder of its own would compile std again, for minutes), and
//! componentize-py and -js are the suite's. The xtask and the scenario
//! runner are the binaries the suite built.
//!
//! Like `chain.rs`, this needs the binaries beside the test binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::chain::{Chain, Engine, Options, copy_dir, output_within};
use crate::surface::{binary, profile_dir, repo_root};

/// The guide this test follows.
const GUIDE: &str = "docs/writing-a-feature.md";

/// Each template's language (as `--lang` takes it) and the plugin made from it.
const PLUGINS: [(&str, &str); 3] = [
    ("rust", "hello-rust"),
    ("python", "hello-python"),
    ("js", "hello-js"),
];

/// Longest one xtask command may take (a cold wasm build of the SDK).
const XTASK: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread")]
async fn a_new_plugin_from_each_template_is_reachable_from_the_client() {
    let started = Instant::now();
    let guide = guide_commands();
    let tree = Tree::new();
    let before = tree.files();
    let mut ran: Vec<Vec<String>> = Vec::new();

    // Make, test and build: the guide's `cargo xtask` commands in its order.
    let xtask_commands: Vec<&Vec<String>> = guide
        .iter()
        .filter(|command| command.starts_with(&["cargo".into(), "xtask".into()]))
        .filter(|command| command[2] != "test")
        .collect();
    assert!(
        xtask_commands.iter().any(|c| c[2] == "new-plugin")
            && xtask_commands.iter().any(|c| c[2] == "test-plugin")
            && xtask_commands.iter().any(|c| c[2] == "build-plugins"),
        "{GUIDE} makes, tests and builds a plugin: {xtask_commands:?}"
    );
    for command in &xtask_commands {
        let per_plugin = command.iter().any(|word| word == "NAME");
        for (language, name) in PLUGINS {
            if command[2] == "new-plugin" && language_of(command) != language {
                continue;
            }
            let argv: Vec<String> = command
                .iter()
                .map(|word| {
                    if word == "NAME" {
                        name.into()
                    } else {
                        word.clone()
                    }
                })
                .collect();
            let step = Instant::now();
            tree.xtask(&argv[2..]);
            println!("{} took {:?}", argv.join(" "), step.elapsed());
            ran.push(argv);
            if !per_plugin {
                break;
            }
        }
    }
    let made = tree.files();
    tree.assert_only_new_plugins_changed(&before, &made);
    println!("made, tested and built in {:?}", started.elapsed());

    // Release and serve: the demo ledger's chain with this copy's policies
    // and components; then the client runs each feature.
    let mut options = Options::new(Engine::Deterministic);
    options.root = tree.root.clone();
    options.plugins = tree.root.join("target/plugins");
    let chain = Chain::start(options).await;
    let inputs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run_commands: Vec<&Vec<String>> = guide
        .iter()
        .filter(|command| command.starts_with(&["cloister".into(), "run".into()]))
        .collect();
    assert!(!run_commands.is_empty(), "{GUIDE} runs a feature");
    for command in run_commands {
        for (_, name) in PLUGINS {
            let input = inputs.path().join(format!("{name}.json"));
            std::fs::write(&input, r#"{"text": "Please utilise the venue at noon."}"#)
                .unwrap_or_else(|e| panic!("{e}"));
            let input = input.display().to_string();
            let argv: Vec<&str> = command[1..]
                .iter()
                .map(|word| match word.as_str() {
                    "NAME" => name,
                    "FILE" => &input,
                    word => word,
                })
                .collect();
            let output = chain.cloister(&argv).await;
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.starts_with(&format!("[AI answer by `{name}` on a SIMULATED host")),
                "{stdout}"
            );
            assert!(
                stdout.contains("\"text\": \"") && !stdout.contains("\"text\": \"\""),
                "{name} answers with its output type: {stdout}"
            );
        }
    }
    assert_eq!(tree.files(), made, "releasing and serving changed the tree");

    // Every command of the guide was run: here, by the chain, or by CI.
    ran.extend(chain.ran.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap_or_default();
    if ci.lines().any(|line| line.contains("cargo xtask test")) {
        ran.push(vec!["cargo".into(), "xtask".into(), "test".into()]);
    }
    for command in &guide {
        assert!(
            ran.iter().any(|done| covers(done, command)),
            "`{}` in {GUIDE} is run by no test and not by CI; ran: {ran:#?}",
            command.join(" ")
        );
    }
    println!("the whole guide in {:?}", started.elapsed());
}

/// The commands of the guide's `sh` blocks, one per line, split into words
/// (without comments and output redirections).
fn guide_commands() -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(repo_root().join(GUIDE)).unwrap_or_else(|e| panic!("{GUIDE}: {e}"));
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let command = trimmed.split(" #").next().unwrap_or_default();
        let command = command.split(" >").next().unwrap_or_default();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        commands.push(command.split_whitespace().map(str::to_owned).collect());
    }
    assert!(!commands.is_empty(), "{GUIDE} has no sh blocks");
    commands
}

/// The language a `new-plugin` command makes (`rust` without `--lang`).
fn language_of(command: &[String]) -> &str {
    command
        .iter()
        .position(|word| word == "--lang")
        .and_then(|i| command.get(i + 1))
        .map_or("rust", String::as_str)
}

/// Whether `done` (program name and arguments) is the guide's `command`:
/// the same program and subcommands, every flag of the guide's, and every
/// other word of the guide's but its placeholders (words in capitals:
/// `NAME`, `FILE`, `URL`...).
fn covers(done: &[String], command: &[String]) -> bool {
    let program = |argv: &[String]| -> (String, usize) {
        match argv {
            [cargo, xtask, ..] if cargo == "cargo" && xtask == "xtask" => ("xtask".into(), 2),
            [first, ..] => (first.clone(), 1),
            [] => (String::new(), 0),
        }
    };
    let ((done_program, done_start), (program, start)) = (program(done), program(command));
    let placeholder = |word: &str| {
        word.chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    };
    done_program == program
        && command[start..]
            .iter()
            .filter(|word| !placeholder(word) && !word.contains('/') && !word.contains('.'))
            .all(|word| done[done_start..].contains(word))
}

/// The copy of the tree a feature team works in.
struct Tree {
    root: PathBuf,
}

impl Tree {
    /// Makes the copy afresh, settles its Cargo.lock.
    fn new() -> Self {
        let real = repo_root();
        let base = real.join("target/templates-e2e");
        let root = base.join("tree");
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        }
        // The copy's own `target`, with the wasm builds and tools shared
        // with the suite (componentize-js reads sources only below a real
        // path: the folder itself is no link).
        let wasm = real.join("target/wasm");
        let tools = real.join("target/tools");
        for dir in [&wasm, &tools, &root.join("target"), &root.join("plugins")] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        for (link, to) in [("wasm", &wasm), ("tools", &tools)] {
            std::os::unix::fs::symlink(to, root.join("target").join(link))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for dir in [
            "wit",
            "xtask/template",
            "xtask/python",
            "xtask/js",
            "policies",
            "scripts",
        ] {
            copy_dir(&real.join(dir), &root.join(dir));
        }
        for dir in ["plugins/sdk", "plugins/testkit"] {
            copy_dir(&real.join(dir).join("src"), &root.join(dir).join("src"));
            std::fs::copy(
                real.join(dir).join("Cargo.toml"),
                root.join(dir).join("Cargo.toml"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        // Only the new plugins are served from the copy.
        for entry in
            std::fs::read_dir(root.join("policies/plugins")).unwrap_or_else(|e| panic!("{e}"))
        {
            std::fs::remove_file(entry.unwrap_or_else(|e| panic!("{e}")).path())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(root.join("Cargo.toml"), workspace_manifest(&real))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(real.join("Cargo.lock"), root.join("Cargo.lock"))
            .unwrap_or_else(|e| panic!("{e}"));
        let tree = Self { root };
        let settled = output_within(
            tree.command(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["metadata", "--offline", "--format-version", "1"]),
            XTASK,
        );
        assert!(
            settled.status.success(),
            "cargo metadata in the copy: {}",
            String::from_utf8_lossy(&settled.stderr)
        );
        tree
    }

    /// `program` in the copy, offline, with the suite's scenario runner.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.root)
            .env("CARGO_NET_OFFLINE", "true")
            .env("CLOISTER_PLUGIN_TEST", binary("cloister-plugin-test"))
            .env_remove("CARGO_TARGET_DIR");
        command
    }

    /// `cargo xtask ARGS` in the copy (the suite's xtask binary, which
    /// `cargo xtask` builds in its own profile: `target/xtask/xtask`).
    fn xtask(&self, args: &[String]) {
        let xtask = profile_dir()
            .parent()
            .map(|target| target.join(format!("xtask/xtask{}", std::env::consts::EXE_SUFFIX)))
            .unwrap_or_else(|| panic!("no target directory"));
        assert!(
            xtask.exists(),
            "{} is missing: run the suite with `cargo xtask test`",
            xtask.display()
        );
        let xtask = xtask.display().to_string();
        let output = output_within(self.command(&xtask).args(args), XTASK);
        assert!(
            output.status.success(),
            "cargo xtask {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Every file of the copy (its `target` aside) and its contents.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                let relative = path
                    .strip_prefix(&self.root)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .to_path_buf();
                if relative == Path::new("target") {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
                    files.insert(relative, bytes);
                }
            }
        }
        files
    }

    /// Between `before` and `after`, only files under `plugins/<new>/` and
    /// `policies/plugins/<new>.toml` appeared, and Cargo.lock gained only
    /// the new packages' entries.
    fn assert_only_new_plugins_changed(
        &self,
        before: &BTreeMap<PathBuf, Vec<u8>>,
        after: &BTreeMap<PathBuf, Vec<u8>>,
    ) {
        let new_plugin_file = |path: &Path| {
            PLUGINS.iter().any(|(_, name)| {
                path.starts_with(Path::new("plugins").join(name))
                    || path == Path::new("policies/plugins").join(format!("{name}.toml"))
            })
        };
        let lock = Path::new("Cargo.lock");
        for (path, bytes) in after {
            if new_plugin_file(path) || path == lock {
                continue;
            }
            assert!(
                before.get(path) == Some(bytes),
                "{} changed outside the new plugins",
                path.display()
            );
        }
        for path in before.keys() {
            assert!(after.contains_key(path), "{} was removed", path.display());
        }
        for (_, name) in PLUGINS {
            assert!(
                after.contains_key(&Path::new("plugins").join(name).join("Cargo.toml")),
                "{name} was made"
            );
        }
        let packages = |bytes: &[u8]| -> Vec<toml::Value> {
            let lock: toml::Table = toml::from_str(&String::from_utf8_lossy(bytes))
                .unwrap_or_else(|e| panic!("Cargo.lock: {e}"));
            lock.get("package")
                .and_then(toml::Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let old = packages(&before[lock]);
        let new: Vec<toml::Value> = packages(&after[lock])
            .into_iter()
            .filter(|package| {
                let name = package.get("name").and_then(toml::Value::as_str);
                !PLUGINS.iter().any(|(_, plugin)| name == Some(plugin))
            })
            .collect();
        assert!(
            old == new,
            "Cargo.lock changed beyond the new plugins' own entries"
        );
    }
}

/// The copy's workspace manifest: this tree's, with `plugins/*` as members
/// and every path dependency but the SDK's and the test kit's pointing here.
fn workspace_manifest(real: &Path) -> String {
    let text = std::fs::read_to_string(real.join("Cargo.toml")).unwrap_or_else(|e| panic!("{e}"));
    let mut manifest: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let workspace = manifest
        .get_mut("workspace")
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("no [workspace]"));
    workspace.insert(
        "members".into(),
        toml::Value::Array(vec!["plugins/*".into()]),
    );
    workspace.remove("exclude");
    let dependencies = workspace
        .get_mut("dependencies")
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("no [workspace.dependencies]"));
    for (_, dependency) in dependencies.iter_mut() {
        if let Some(path) = dependency.get_mut("path")
            && let Some(relative) = path.as_str()
            && !relative.starts_with("plugins/")
        {
            *path = real.join(relative).display().to_string().into();
        }
    }
    toml::to_string(&manifest).unwrap_or_else(|e| panic!("{e}"))
}
