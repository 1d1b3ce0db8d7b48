//! The `cloister` binary as a user starts it. Building these tests also
//! builds the binary, which the end-to-end tests start as a process.

use std::process::{Command, Output};

fn cloister(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args(args)
        .env_remove("CLOISTER_CONFIG")
        .output()
        .expect("the binary starts")
}

#[test]
fn help_names_every_command() {
    let output = cloister(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["account", "tokens", "run", "summarise", "suggest", "chat"] {
        assert!(help.contains(command), "`{command}` missing from:\n{help}");
    }
}

#[test]
fn an_input_that_is_not_a_feature_request_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("request.json");
    std::fs::write(&path, "{\"feature\": \"summarise\", \"inptu\": {}}").expect("write");
    let path = path.to_str().expect("UTF-8 path");
    let output = cloister(&["summarise", path]);
    assert!(!output.status.success(), "a malformed request was accepted");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(path) && error.contains("inptu"),
        "the error names neither the file nor the field: {error}"
    );
}
