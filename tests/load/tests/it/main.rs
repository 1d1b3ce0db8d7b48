//! `cloister-load` as an operator starts it. Building these tests also
//! builds the binary, which the end-to-end load test starts as a process.

use std::process::{Command, Output};

fn cloister_load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister-load"))
        .args(args)
        .output()
        .expect("the binary starts")
}

#[test]
fn help_names_both_commands() {
    let output = cloister_load(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["run", "audit"] {
        assert!(help.contains(command), "`{command}` missing from:\n{help}");
    }
}

#[test]
fn a_relay_beyond_loopback_is_refused_before_any_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("cloister.toml");
    let example = include_str!("../../../../client/cli/cloister.example.toml").replace(
        "https://127.0.0.1:7100/relay",
        "https://relay.example.com/relay",
    );
    std::fs::write(&config, example).expect("write config");
    let request = dir.path().join("request.json");
    std::fs::write(&request, r#"{"feature": "summarise", "input": {}}"#).expect("write");
    let output = cloister_load(&[
        "run",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--request",
        request.to_str().expect("UTF-8 path"),
        "--requests",
        "1",
    ]);
    assert!(!output.status.success(), "a remote relay was accepted");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("relay.example.com") && error.contains("not on loopback"),
        "the refusal does not say why: {error}"
    );
}

#[test]
fn a_count_over_the_cap_is_refused() {
    let output = cloister_load(&[
        "run",
        "--config",
        "unused.toml",
        "--request",
        "unused.json",
        "--requests",
        "1000000",
    ]);
    assert!(!output.status.success(), "an unbounded run was accepted");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("1000000"),
        "the refusal does not name the count: {error}"
    );
}
