//! `cargo xtask test-plugin NAME`: one plugin's component built, then its
//! scenarios (`plugins/NAME/tests/*.toml`) run under the real runtime with
//! the test kit's scripted model, whatever language the plugin is in.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::{cargo, plugins, run};

/// The scenario runner of the test kit (`plugins/testkit/src/bin`).
const RUNNER: &str = "cloister-plugin-test";

/// Builds plugin `name` (only it) and runs its scenarios.
pub(crate) fn test_plugin(root: &Path, name: &str) -> Result<()> {
    plugins::build(root, Some(name))?;
    let mut runner = runner(root);
    run(runner
        .arg(name)
        .arg("--scenarios")
        .arg(root.join("plugins").join(name).join("tests"))
        .arg("--policies")
        .arg(root.join("policies"))
        .arg("--components")
        .arg(root.join("target/plugins")))
    .with_context(|| format!("scenarios of {name} failed"))
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
