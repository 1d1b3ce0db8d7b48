//! `cargo xtask test-plugin NAME`: one plugin's component built, then its
//! tests under the real runtime with the test kit's scripted model, whatever
//! language the plugin is in: its scenarios (`plugins/NAME/tests/*.toml`,
//! what `cargo xtask new-plugin` writes) or, for a plugin without any, its
//! crate's Rust tests (`cargo test -p NAME`, written with the test kit).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, ensure};

use crate::{cargo, plugins, run};

/// The scenario runner of the test kit (`plugins/testkit/src/bin`).
const RUNNER: &str = "cloister-plugin-test";

/// Builds plugin `name` (only it) and runs its tests.
pub(crate) fn test_plugin(root: &Path, name: &str) -> Result<()> {
    plugins::build(root, Some(name), None)?;
    let tests = root.join("plugins").join(name).join("tests");
    match tests_in(name, &tests)? {
        Tests::Scenarios => run(runner(root)
            .arg(name)
            .arg("--scenarios")
            .arg(&tests)
            .arg("--policies")
            .arg(root.join("policies"))
            .arg("--components")
            .arg(root.join("target/plugins")))
        .with_context(|| format!("scenarios of {name} failed")),
        Tests::Crate => run(cargo().current_dir(root).args(["test", "-p", name]))
            .with_context(|| format!("the tests of {name} failed")),
    }
}

/// Which tests a plugin has.
#[derive(Debug, PartialEq, Eq)]
enum Tests {
    /// Scenarios (`tests/*.toml`), run by the test kit's runner.
    Scenarios,
    /// Only its crate's Rust tests.
    Crate,
}

/// The tests in `tests`, plugin `name`'s folder of them.
fn tests_in(name: &str, tests: &Path) -> Result<Tests> {
    let entries: Vec<_> = std::fs::read_dir(tests)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    if entries
        .iter()
        .any(|path| path.extension().is_some_and(|ext| ext == "toml"))
    {
        return Ok(Tests::Scenarios);
    }
    ensure!(
        !entries.is_empty(),
        "plugin {name} has no tests: add scenarios (plugins/{name}/tests/*.toml, as `cargo xtask new-plugin` writes them) or Rust tests using cloister-plugin-testkit"
    );
    Ok(Tests::Crate)
}

/// The scenario runner: `$CLOISTER_PLUGIN_TEST` when set (a runner built
/// elsewhere, for a workspace without the test kit's sources), else the test
/// kit's, built and run by cargo.
fn runner(root: &Path) -> Command {
    if let Some(path) = std::env::var_os("CLOISTER_PLUGIN_TEST") {
        return Command::new(path);
    }
    let mut command = cargo();
    command.current_dir(root).args([
        "run",
        "--quiet",
        "-p",
        "cloister-plugin-testkit",
        "--bin",
        RUNNER,
        "--",
    ]);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_come_first_then_the_crates_tests_and_no_tests_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tests = dir.path().join("tests");
        let error = tests_in("echo", &tests).expect_err("no folder");
        assert!(
            error.to_string().contains("plugin echo has no tests"),
            "{error}"
        );
        std::fs::create_dir_all(tests.join("it")).expect("it");
        assert_eq!(tests_in("echo", &tests).expect("crate"), Tests::Crate);
        std::fs::write(tests.join("hello.toml"), "").expect("scenario");
        assert_eq!(
            tests_in("echo", &tests).expect("scenarios"),
            Tests::Scenarios
        );
    }
}
