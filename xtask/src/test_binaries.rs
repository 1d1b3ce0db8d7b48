//! The suite's test binaries, run two at a time.
//!
//! `cargo test` runs a workspace's test binaries one after another. The
//! longest of them, the end-to-end `it`, spends much of its time waiting
//! on the party processes it starts, and a core idles meanwhile. Here the
//! binaries cargo built are run by a pool of workers, longest first (by the
//! durations of the last run, kept in `target/test-durations.json`; the
//! end-to-end binary first when there are none), each as `cargo test` runs
//! it: in its package's folder, with `CARGO` and `CARGO_MANIFEST_DIR` set.
//! A binary's output is printed whole when it ends, so none interleaves.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// Where the last run's durations are kept, relative to the workspace root.
const DURATIONS: &str = "target/test-durations.json";

/// The binary that goes first when no durations are known.
const LONGEST: &str = "cloister-e2e it";

/// One test executable of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestBinary {
    /// `package target` (e.g. `cloister-e2e it`): how it is named in output.
    pub name: String,
    pub executable: PathBuf,
    /// Its package's folder: where cargo runs it.
    pub package_dir: PathBuf,
}

/// The test executables `cargo test --no-run --message-format=json` printed.
pub(crate) fn parse(messages: &[u8]) -> Result<Vec<TestBinary>> {
    let mut binaries = Vec::new();
    for line in messages.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let message: serde_json::Value =
            serde_json::from_slice(line).context("cargo printed a line that is not JSON")?;
        let (Some(executable), Some(manifest)) = (
            message["executable"].as_str(),
            message["manifest_path"].as_str(),
        ) else {
            continue;
        };
        if message["profile"]["test"] != true {
            continue;
        }
        let package_dir = Path::new(manifest)
            .parent()
            .context("a manifest path without a folder")?
            .to_owned();
        let package = package_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let package = message["package_id"]
            .as_str()
            .and_then(package_name)
            .unwrap_or(package);
        let target = message["target"]["name"].as_str().unwrap_or("?");
        binaries.push(TestBinary {
            name: format!("{package} {target}"),
            executable: executable.into(),
            package_dir,
        });
    }
    Ok(binaries)
}

/// The name in a package id: `path+file:///…/gateway#cloister-gateway@0.1.0`
/// or `…#0.1.0` (the folder's name then).
fn package_name(id: &str) -> Option<String> {
    let (_, fragment) = id.rsplit_once('#')?;
    let name = fragment.split_once('@').map(|(name, _)| name)?;
    Some(name.to_owned())
}

/// Longest first: by the durations known, else the end-to-end binary first,
/// then in the order cargo built them.
pub(crate) fn order(
    mut binaries: Vec<TestBinary>,
    known: &BTreeMap<String, f64>,
) -> Vec<TestBinary> {
    let weight = |b: &TestBinary| match known.get(&b.name) {
        Some(seconds) => *seconds,
        None if b.name == LONGEST => f64::MAX,
        None => 0.0,
    };
    binaries.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    binaries
}

/// Runs every binary with `args`, `jobs` at a time; fails naming every
/// binary that failed, after all have run.
pub(crate) fn run_all(
    root: &Path,
    binaries: Vec<TestBinary>,
    jobs: usize,
    args: &[String],
    env: &[(&str, String)],
) -> Result<()> {
    let durations_path = root.join(DURATIONS);
    let known: BTreeMap<String, f64> = std::fs::read(&durations_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let queue = Mutex::new(VecDeque::from(order(binaries, &known)));
    let results = Mutex::new(Vec::new());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(binary) = queue.lock().map_or(None, |mut q| q.pop_front()) else {
                        return;
                    };
                    let started = Instant::now();
                    let output = Command::new(&binary.executable)
                        .args(args)
                        .current_dir(&binary.package_dir)
                        .env("CARGO", &cargo)
                        .env("CARGO_MANIFEST_DIR", &binary.package_dir)
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .output();
                    let seconds = started.elapsed().as_secs_f64();
                    let passed = match &output {
                        Ok(output) => {
                            // One write per binary, so outputs never interleave.
                            let mut text =
                                format!("     Running {} ({seconds:.1} s)\n", binary.name);
                            text.push_str(&String::from_utf8_lossy(&output.stdout));
                            text.push_str(&String::from_utf8_lossy(&output.stderr));
                            print!("{text}");
                            output.status.success()
                        }
                        Err(error) => {
                            println!("     Running {}: could not start: {error}", binary.name);
                            false
                        }
                    };
                    if let Ok(mut results) = results.lock() {
                        results.push((binary.name, seconds, passed));
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a test worker panicked"))?;
    let durations: BTreeMap<&str, f64> = results.iter().map(|(n, s, _)| (n.as_str(), *s)).collect();
    std::fs::write(
        &durations_path,
        serde_json::to_string_pretty(&durations)? + "\n",
    )
    .with_context(|| format!("writing {}", durations_path.display()))?;
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, _, passed)| !passed)
        .map(|(name, _, _)| name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("test binaries failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(name: &str) -> TestBinary {
        TestBinary {
            name: name.into(),
            executable: PathBuf::from("/x"),
            package_dir: PathBuf::from("/p"),
        }
    }

    #[test]
    fn cargo_messages_give_the_test_executables_and_their_packages() {
        let messages = br#"{"reason":"compiler-artifact","package_id":"path+file:///w/gateway#cloister-gateway@0.1.0","manifest_path":"/w/gateway/Cargo.toml","target":{"name":"it"},"profile":{"test":true},"executable":"/w/target/debug/deps/it-1"}
{"reason":"compiler-artifact","package_id":"path+file:///w/relay#0.1.0","manifest_path":"/w/relay/Cargo.toml","target":{"name":"cloister_relay"},"profile":{"test":true},"executable":"/w/target/debug/deps/cloister_relay-2"}
{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.0","manifest_path":"/r/serde/Cargo.toml","target":{"name":"serde"},"profile":{"test":false},"executable":null}
{"reason":"compiler-artifact","package_id":"path+file:///w/relay#0.1.0","manifest_path":"/w/relay/Cargo.toml","target":{"name":"cloister-relay"},"profile":{"test":false},"executable":"/w/target/debug/cloister-relay"}
{"reason":"build-finished","success":true}
"#;
        let binaries = parse(messages).expect("parse");
        assert_eq!(
            binaries,
            [
                TestBinary {
                    name: "cloister-gateway it".into(),
                    executable: "/w/target/debug/deps/it-1".into(),
                    package_dir: "/w/gateway".into(),
                },
                TestBinary {
                    name: "relay cloister_relay".into(),
                    executable: "/w/target/debug/deps/cloister_relay-2".into(),
                    package_dir: "/w/relay".into(),
                },
            ]
        );
        assert!(parse(b"not json\n").is_err());
    }

    #[test]
    fn known_durations_go_longest_first_and_the_end_to_end_binary_leads_when_unknown() {
        let built = vec![
            binary("cloister-e2e cloister_e2e"),
            binary("a lib"),
            binary("cloister-e2e it"),
            binary("b it"),
        ];
        let names = |order: Vec<TestBinary>| order.into_iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(
            names(order(built.clone(), &BTreeMap::new())),
            [
                "cloister-e2e it",
                "cloister-e2e cloister_e2e",
                "a lib",
                "b it"
            ]
        );
        let known = BTreeMap::from([
            ("a lib".to_owned(), 3.0),
            ("cloister-e2e it".to_owned(), 90.0),
            ("b it".to_owned(), 120.0),
        ]);
        assert_eq!(
            names(order(built, &known)),
            [
                "b it",
                "cloister-e2e it",
                "a lib",
                "cloister-e2e cloister_e2e"
            ]
        );
    }
}
