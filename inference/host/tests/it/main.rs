//! The `cloister-inference-host` binary as an operator starts it. Building
//! these tests also builds the binary, which the end-to-end tests start as
//! a process.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister-inference-host"))
        .args(args)
        .env_remove("CLOISTER_INFERENCE_HOST_CONFIG")
        .output()
        .expect("the binary starts")
}

#[test]
fn help_names_every_command() {
    let output = run(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "measure"] {
        assert!(help.contains(command), "`{command}` missing from:\n{help}");
    }
}

#[test]
fn a_configuration_with_an_unknown_key_is_refused_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inference-host.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nmax-tokenz = 64\n").expect("write");
    let path = path.to_str().expect("UTF-8 path");
    let output = run(&["--config", path, "measure"]);
    assert!(!output.status.success(), "a misspelt key was accepted");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(path) && error.contains("max-tokenz"),
        "the error names neither the file nor the key: {error}"
    );
}
