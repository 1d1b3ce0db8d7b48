//! The host's panic hook: a panic, whose message may hold conversation
//! text, leaves one allow-listed record on stderr and nothing else. Tested
//! in a child process (this test binary run again), since a panic hook is
//! global to its process.

use std::process::Command;
use std::sync::Arc;

use cloister_host::logfilter::{
    AllowList, AllowListLayer, JsonLinesSink, LogFilter, install_panic_hook,
};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

/// Set in the child's environment.
const CHILD: &str = "CLOISTER_PANIC_HOOK_CHILD";

/// What the child panics with.
const SECRET: &str = "the clinic called: the results are positive";

/// The child: the host's log filter and panic hook, as `cloister-host`
/// installs them, then a panic with conversation text. A no-op unless run
/// by the test below.
#[test]
fn panicking_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let path = crate::common::repo_root().join("policies/log-allowlist.toml");
    let allow: AllowList =
        toml::from_str(&std::fs::read_to_string(path).expect("allow-list")).expect("allow-list");
    let filter = Arc::new(LogFilter::new(allow, Arc::new(JsonLinesSink)));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(AllowListLayer::new(filter)),
    )
    .expect("subscriber");
    install_panic_hook();
    panic!("{SECRET}");
}

#[test]
fn a_panic_logs_one_allow_listed_event_and_nothing_of_its_message() {
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "panic_hook::panicking_child", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the child panicked: {stdout}");
    assert!(
        !stderr.contains("clinic") && !stdout.contains("clinic"),
        "the panic message escaped:\n{stderr}\n{stdout}"
    );
    let records: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a record: {line}")))
        .collect();
    assert_eq!(
        records,
        [json!({"source": "host", "level": "error", "event": "host-panicked", "fields": {}})]
    );
}
