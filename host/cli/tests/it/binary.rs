//! The `cloister-host` binary itself: everything it logs, start-up and
//! shutdown included, passes the allow-list, so stderr carries only JSON
//! records of listed events and fields.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_line_the_binary_logs_is_an_allow_listed_record() {
    let plugins = std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map_or_else(|| repo_root().join("target/plugins"), PathBuf::from);
    let scratch = tempfile::tempdir().expect("temp dir");
    let config = scratch.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            "plugin-dir = {:?}\npolicy-dir = {:?}\n\n[inference]\nbackend = \"deterministic\"\n\n\
             [runtime]\ncompile-cache = {:?}\n",
            plugins,
            repo_root().join("policies"),
            // Shared with the other tests' engines (development only, as
            // this host's simulated attestation is): the Python and
            // JavaScript plugins are not compiled again.
            repo_root().join("target/wasmtime-cache"),
        ),
    )
    .expect("config");
    let output = Command::new(env!("CARGO_BIN_EXE_cloister-host"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .arg("--input")
        .arg(repo_root().join("plugins/summarise/testdata/team-lunch.json"))
        .output()
        .expect("cloister-host runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );

    let allow: toml::Table =
        std::fs::read_to_string(repo_root().join("policies/log-allowlist.toml"))
            .expect("allow-list")
            .parse()
            .expect("allow-list TOML");
    let mut events = Vec::new();
    for line in stderr.lines() {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON record: {line:?}"));
        let event = record["event"]
            .as_str()
            .unwrap_or_else(|| panic!("no event: {line}"));
        let sections: &[&str] = if record["source"] == "host" {
            &["request", "host"]
        } else {
            &["plugin"]
        };
        let rule = sections
            .iter()
            .find_map(|section| allow.get(*section).and_then(|events| events.get(event)))
            .unwrap_or_else(|| panic!("unlisted event: {line}"));
        let listed = rule.get("fields").and_then(toml::Value::as_table);
        for field in record["fields"].as_object().expect("fields").keys() {
            assert!(
                listed.is_some_and(|fields| fields.contains_key(field)),
                "field `{field}` of `{event}` is not listed"
            );
        }
        events.push(event.to_owned());
    }
    // The simulated backend is announced through the filter, not around it.
    for expected in [
        "plugin-loaded",
        "simulation",
        "host-started",
        "request-completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "no `{expected}` in {events:?}"
        );
    }
}
