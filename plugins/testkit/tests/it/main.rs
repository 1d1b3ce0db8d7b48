//! The scenario runner as `cargo xtask test-plugin` starts it
//! (`cloister-plugin-test`), on the built summarise component with the
//! real policies: passing scenarios, and failures that name the scenario,
//! the field, what was expected and what came back.

use std::path::Path;
use std::process::{Command, Output};

use cloister_plugin_testkit::{plugin_dir, policy_dir};

/// Summarise's answer to a two-message conversation with a scripted reply.
const LUNCH: &str = r#"
description = "a summary is the cleaned model answer"
replies = ["Summary: Alice and Bruno moved lunch to Friday."]

[input]
max-words = 0
messages = [
    { sender = "Alice", sent-at = 1764064800, text = "Lunch on Friday?" },
    { sender = "Bruno", sent-at = 1764064860, text = "Friday works." },
]

[expect]
output = { text = "Alice and Bruno moved lunch to Friday.", messages-covered = 2 }
events = ["request-started", "inference-completed", "request-finished"]
calls = 1
prompt-contains = ["Alice: Lunch on Friday?"]
"#;

fn run(scenarios: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister-plugin-test"))
        .arg("summarise")
        .arg("--scenarios")
        .arg(scenarios)
        .arg("--policies")
        .arg(policy_dir())
        .arg("--components")
        .arg(plugin_dir())
        .output()
        .expect("runs")
}

fn scenarios(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

#[test]
fn passing_scenarios_are_listed_and_the_runner_succeeds() {
    let budget = LUNCH
        .replace("[expect]", "[inference]\nmax-tokens-per-call = 2\n\n[expect]")
        .replace(
            "output = { text = \"Alice and Bruno moved lunch to Friday.\", messages-covered = 2 }",
            "error = \"budget-exceeded\"\nerror-fields = { budget = \"tokens-per-call\" }",
        )
        .replace(
            "events = [\"request-started\", \"inference-completed\", \"request-finished\"]\ncalls = 1\nprompt-contains = [\"Alice: Lunch on Friday?\"]\n",
            "calls = 0\n",
        );
    let dir = scenarios(&[("lunch.toml", LUNCH.to_owned()), ("budget.toml", budget)]);
    let output = run(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("ok      ") && stdout.contains("lunch.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 scenarios, 2 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_failure_names_the_scenario_the_field_and_expected_against_got() {
    let wrong_output = LUNCH.replace("moved lunch to Friday.\", messages", "met.\", messages");
    let wrong_events = LUNCH.replace("\"inference-completed\", ", "");
    let wrong_error = LUNCH.replace(
        "output = { text = \"Alice and Bruno moved lunch to Friday.\", messages-covered = 2 }",
        "error = \"invalid-input\"",
    );
    let dir = scenarios(&[
        ("wrong-output.toml", wrong_output),
        ("wrong-events.toml", wrong_events),
        ("wrong-error.toml", wrong_error),
        ("not-a-scenario.toml", "input = 1\n".to_owned()),
    ]);
    let output = run(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    for expected in [
        "wrong-output.toml: expect.output: expected {\"messages-covered\":2,\"text\":\"Alice and Bruno met.\"}, got {\"messages-covered\":2,\"text\":\"Alice and Bruno moved lunch to Friday.\"}",
        "wrong-events.toml: expect.events: expected [\"request-started\", \"request-finished\"], got [\"request-started\", \"inference-completed\", \"request-finished\"]",
        "wrong-error.toml: expect.error: expected invalid-input, got output {",
        "not-a-scenario.toml: not a scenario: ",
        "4 scenarios, 0 passed, 4 failed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn a_folder_without_scenarios_fails() {
    let dir = scenarios(&[]);
    let output = run(dir.path());
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("no scenarios"),
        "{output:?}"
    );
}
