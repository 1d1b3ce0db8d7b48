//! The reviewer's page of each plugin (`cloister-release review`), read
//! from this repository's policies, WIT and built components, and from a
//! real ledger on loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{EntryBody, Provenance, Release, ReleasedPlugin, Subject};
use cloister_release::review::{
    CAPABILITIES_PAGE, INDEX_PAGE, LedgerCheck, PluginReview, ReviewInputs, open_ledger, review,
};
use cloister_release::submit::submit;
use cloister_wire::{HostData, Measurement};

use crate::submit::{TestLedger, key, start_ledger};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built components, as the other tests of built plugins find them.
fn plugin_dir() -> PathBuf {
    std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map_or_else(|| repo_root().join("target/plugins"), PathBuf::from)
}

fn plugin<'a>(plugins: &'a [PluginReview], name: &str) -> &'a PluginReview {
    plugins
        .iter()
        .find(|plugin| plugin.name == name)
        .unwrap_or_else(|| panic!("no review of {name}"))
}

/// The `digest = "..."` of a manifest, as written.
fn manifest_digest(name: &str) -> String {
    let path = repo_root().join(format!("policies/plugins/{name}.toml"));
    let text = fs::read_to_string(&path).expect("manifest");
    text.lines()
        .find_map(|line| line.strip_prefix("digest = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("digest line")
        .to_owned()
}

#[test]
fn the_page_of_summarise_shows_its_types_budgets_events_and_digest() {
    let review = review(&ReviewInputs {
        root: &repo_root(),
        plugin_dir: &plugin_dir(),
        ledger: None,
    })
    .expect("review");
    let summarise = plugin(&review.plugins, "summarise");
    let page = &summarise.page;
    let digest = manifest_digest("summarise");
    for expected in [
        // Its digest, and the file's check against it.
        digest.as_str(),
        "matches the manifest's digest",
        // Input and output types of `run`, with their doc comments.
        "run: func(input: summarise-input) -> result<summary, feature-error>;",
        "### record `summarise-input`",
        "| `max-words` | `u32` | Rough upper bound on summary length, in words (0: the feature decides). |",
        "### record `message`",
        "### record `summary`",
        "| `messages-covered` | `u32` |",
        "`feature-error` from `cloister:feature/types@0.1.0`",
        "the component's world is the one `plugins/summarise/wit/world.wit` declares",
        "`cloister:summarise/summarise@0.1.0`",
        // Imports and what the manifest says of them.
        "| `cloister:feature/inference@0.1.0` | `generate` | allowed |",
        // Budgets and limits.
        "| linear memory | 33554432 B (32 MiB) |",
        "| wall time | 60000 ms |",
        "| response size (as the client receives it) | 4096 B (4 KiB) |",
        "| tokens per call | 448 |",
        "| calls per request | 1 |",
        "| models | `smollm2-135m-instruct` |",
        // Allowed log events with their field bounds.
        "at most 8 per request",
        "| `request-started` | info | `input-bytes`: a number, recorded as the lower bound of its bucket: 0, 100, 1000, 10000; `message-count`: a number, recorded as the lower bound of its bucket: 0, 10, 100, 1000 |",
        "| `input-rejected` | warn | none |",
        // WASI, and the ledger not asked.
        "None: the component may import no `wasi:*` interface.",
        "not checked: no ledger was given",
        "record summarise-input {",
    ] {
        assert!(page.contains(expected), "missing `{expected}` in:\n{page}");
    }
    assert_eq!(summarise.ledger, LedgerCheck::NotChecked);
    let line = summarise.summary();
    assert!(
        line.starts_with(&format!(
            "summarise 0.1.0 {digest}: component matches digest; WIT matches source;"
        )),
        "{line}"
    );
    assert!(line.contains("ledger not checked"), "{line}");
    assert!(
        review.capabilities.contains("resource `token-stream`"),
        "the capability page comes with it"
    );
    // Python and JavaScript plugins: the WASI interfaces their manifests
    // tolerate, and their world against its source, WASI aside (a
    // componentize-py component also exports its runtime's `init`, which a
    // reviewer is shown).
    for (name, wasi, wit) in [
        (
            "key-points",
            "wasi:cli/environment@0.2.9",
            "WIT DIFFERS FROM SOURCE (1 differences)",
        ),
        (
            "tone-check",
            "wasi:cli/stdout@0.2.12",
            "WIT matches source;",
        ),
    ] {
        let reviewed = plugin(&review.plugins, name);
        assert!(
            reviewed.summary().contains("component matches digest;")
                && reviewed.summary().contains(wit),
            "{}",
            reviewed.summary()
        );
        assert!(
            reviewed.page.contains(&format!("- `{wasi}`")),
            "{}",
            reviewed.page
        );
    }
    assert!(
        plugin(&review.plugins, "key-points")
            .page
            .contains("the component exports `exports.init`, its source does not"),
        "the difference is named"
    );
}

#[test]
fn a_component_that_does_not_match_its_manifest_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = plugin_dir();
    for entry in fs::read_dir(&built).expect("built plugins") {
        let path = entry.expect("entry").path();
        fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    // Another plugin's component under summarise's file name.
    fs::copy(
        built.join("suggest.wasm"),
        dir.path().join("summarise.wasm"),
    )
    .expect("copy");
    let review = review(&ReviewInputs {
        root: &repo_root(),
        plugin_dir: dir.path(),
        ledger: None,
    })
    .expect("review");
    let summarise = plugin(&review.plugins, "summarise");
    let line = summarise.summary();
    assert!(line.contains("COMPONENT DIGEST MISMATCH"), "{line}");
    assert!(line.contains("WIT DIFFERS FROM SOURCE"), "{line}");
    assert!(
        summarise.page.contains("**DIGEST MISMATCH**"),
        "{}",
        summarise.page
    );
    let suggest = plugin(&review.plugins, "suggest");
    assert!(
        suggest.summary().contains("component matches digest"),
        "{}",
        suggest.summary()
    );
}

/// Logs a release serving `plugins` (name and digest) in `ledger`, signed
/// by two of its three reviewers.
async fn release(ledger: &TestLedger, sequence: u64, plugins: Vec<ReleasedPlugin>) {
    let (policy_set, host_config) = ([0x50; 32], [0x43; 32]);
    let body = EntryBody {
        subject: Subject::Release(Release {
            series: "production".into(),
            sequence,
            published_at: cloister_wire::unix_now() - 60,
            overlap_secs: 3600,
            measurement: Measurement([0xab; 48]),
            snp_policy: 0x30000,
            platform_info: 1,
            host_data: HostData::of_launch(&policy_set, None, &host_config),
            policy_set: HexBytes(policy_set),
            model: None,
            host_config: HexBytes(host_config),
            plugins,
            build: None,
        }),
        provenance: Provenance {
            source_commit: "0123abcd".into(),
            builder: "test@ci".into(),
        },
    };
    submit(
        &ledger.client,
        &[body],
        &[key(1), key(2)],
        Some(&ledger.log_key),
    )
    .await
    .expect("release logged");
}

/// A `--ledger-config` file for `ledger`, with its view kept in `dir`.
fn ledger_config(ledger: &TestLedger, dir: &Path) -> PathBuf {
    let path = dir.join("ledger.toml");
    fs::write(
        &path,
        format!(
            "[ledger]\nurl = \"{}\"\nlog-key = \"{}\"\nstate-dir = \"view\"\n",
            ledger.url, ledger.log_key
        ),
    )
    .expect("write");
    path
}

#[tokio::test]
async fn a_plugin_absent_from_the_ledger_is_reported_not_in_ledger() {
    let ledger = start_ledger().await;
    let summarise_digest = review(&ReviewInputs {
        root: &repo_root(),
        plugin_dir: &plugin_dir(),
        ledger: None,
    })
    .expect("review")
    .plugins
    .iter()
    .find(|plugin| plugin.name == "summarise")
    .map(|plugin| plugin.digest)
    .expect("summarise");
    // Suggest is released, but with another component than the reviewed one.
    release(
        &ledger,
        1,
        vec![
            ReleasedPlugin {
                name: "suggest".into(),
                digest: HexBytes([0x5a; 32]),
            },
            ReleasedPlugin {
                name: "summarise".into(),
                digest: summarise_digest.ledger_digest(),
            },
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let view = open_ledger(&ledger_config(&ledger, dir.path()))
        .await
        .expect("ledger synced");
    let review = review(&ReviewInputs {
        root: &repo_root(),
        plugin_dir: &plugin_dir(),
        ledger: Some(&view),
    })
    .expect("review");

    let suggest = plugin(&review.plugins, "suggest");
    assert_eq!(suggest.ledger, LedgerCheck::NotInLedger);
    assert!(
        suggest.summary().ends_with("NOT IN LEDGER"),
        "{}",
        suggest.summary()
    );
    assert!(
        suggest.page.contains("**NOT IN LEDGER**"),
        "{}",
        suggest.page
    );

    let summarise = plugin(&review.plugins, "summarise");
    assert!(
        summarise
            .summary()
            .ends_with("in ledger: production #1 (current)"),
        "{}",
        summarise.summary()
    );
}

#[tokio::test]
async fn an_unreachable_ledger_is_an_error_not_a_verdict() {
    let ledger = start_ledger().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ledger_config(&ledger, dir.path());
    let text = fs::read_to_string(&config)
        .expect("read")
        .replace(&ledger.url, "http://127.0.0.1:9");
    fs::write(&config, text).expect("write");
    let error = open_ledger(&config)
        .await
        .expect_err("nothing to sync from");
    assert!(error.to_string().contains("ledger view"), "{error}");
}

/// The shell lines of the code blocks of a Markdown file that start with `command`.
fn commands(markdown: &str, command: &str) -> Vec<Vec<String>> {
    let mut in_shell = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh";
            continue;
        }
        if in_shell && line.starts_with(command) {
            found.push(line.split_whitespace().skip(1).map(str::to_owned).collect());
        }
    }
    found
}

/// The `toml` code block of a Markdown file.
fn toml_block(markdown: &str) -> String {
    let start = markdown.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = markdown[start..].find("```").expect("closed") + start;
    markdown[start..end].to_owned()
}

// Two workers: the test waits for the command while the ledger serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_of_the_reviewing_guide_run() {
    let guide = fs::read_to_string(repo_root().join("docs/reviewing-a-plugin.md")).expect("guide");
    let runs = commands(&guide, "cloister-release ");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ledger = start_ledger().await;
    // A folder laid out as the repository root, as the guide's commands expect.
    let cwd = tempfile::tempdir().expect("tempdir");
    for folder in ["policies", "plugins", "wit"] {
        std::os::unix::fs::symlink(repo_root().join(folder), cwd.path().join(folder))
            .expect("link");
    }
    fs::create_dir(cwd.path().join("target")).expect("mkdir");
    std::os::unix::fs::symlink(plugin_dir(), cwd.path().join("target/plugins")).expect("link");
    // The guide's ledger configuration, pointed at the test's ledger.
    let config: String = toml_block(&guide)
        .lines()
        .map(|line| {
            if line.starts_with("url = ") {
                format!("url = \"{}\"", ledger.url)
            } else if line.starts_with("log-key = ") {
                format!("log-key = \"{}\"", ledger.log_key)
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect();
    fs::write(cwd.path().join("ledger.toml"), config).expect("write");

    let mut outputs = Vec::new();
    for args in runs {
        let output = Command::new(env!("CARGO_BIN_EXE_cloister-release"))
            .args(&args)
            .current_dir(cwd.path())
            .env_remove("CLOISTER_PLUGIN_DIR")
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(stdout);
    }
    assert!(
        outputs[0].contains("summarise 0.1.0 sha256:"),
        "{}",
        outputs[0]
    );
    assert!(outputs[0].contains("ledger not checked"), "{}", outputs[0]);
    assert!(
        outputs[1].contains("NOT IN LEDGER"),
        "nothing is released in the test's ledger: {}",
        outputs[1]
    );
    for page in ["summarise.md", "suggest.md", CAPABILITIES_PAGE, INDEX_PAGE] {
        assert!(cwd.path().join("review").join(page).is_file(), "{page}");
    }
}
