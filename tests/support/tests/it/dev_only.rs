//! This crate is a test fixture: no workspace member may depend on it
//! outside `[dev-dependencies]`, or test code would ship in a binary.

use std::path::{Path, PathBuf};

const THIS_CRATE: &str = "cloister-test-support";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The dependency tables of `manifest` that end up in what the crate ships:
/// `[dependencies]`, `[build-dependencies]` and their `[target.*]` forms,
/// each named by where it stands.
fn shipped_tables(manifest: &toml::Table) -> Vec<(String, &toml::Table)> {
    const KINDS: [&str; 2] = ["dependencies", "build-dependencies"];
    let mut tables = Vec::new();
    for kind in KINDS {
        if let Some(table) = manifest.get(kind).and_then(toml::Value::as_table) {
            tables.push((kind.to_owned(), table));
        }
    }
    let targets = manifest
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten();
    for (target, section) in targets {
        for kind in KINDS {
            if let Some(table) = section.get(kind).and_then(toml::Value::as_table) {
                tables.push((format!("target.{target}.{kind}"), table));
            }
        }
    }
    tables
}

/// Where `manifest` depends on this crate other than for its tests
/// (under its own name or renamed with `package = ...`).
fn shipped_uses(manifest: &toml::Table) -> Vec<String> {
    shipped_tables(manifest)
        .into_iter()
        .flat_map(|(place, table)| {
            table
                .iter()
                .filter(|(name, spec)| {
                    name.as_str() == THIS_CRATE
                        || spec.get("package").and_then(toml::Value::as_str) == Some(THIS_CRATE)
                })
                .map(move |(name, _)| format!("[{place}] {name}"))
        })
        .collect()
}

/// Every workspace member's manifest, as cargo itself resolves the member
/// list (globs such as `plugins/*`, and `exclude`).
fn member_manifests() -> Vec<PathBuf> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(repo_root().join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("cargo metadata: {e}"));
    assert!(output.status.success(), "cargo metadata: {output:?}");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("cargo metadata: {e}"));
    metadata["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("cargo metadata lists no packages"))
        .iter()
        .map(|package| {
            PathBuf::from(
                package["manifest_path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a package without a manifest path")),
            )
        })
        .collect()
}

#[test]
fn no_workspace_member_ships_this_crate() {
    let members = member_manifests();
    assert!(members.len() > 1, "{members:?}");
    let mut offenders = Vec::new();
    for member in &members {
        offenders.extend(
            shipped_uses(&read_toml(member))
                .into_iter()
                .map(|place| format!("{}: {place}", member.display())),
        );
    }
    assert!(
        offenders.is_empty(),
        "{THIS_CRATE} is for [dev-dependencies] only: {offenders:?}"
    );
}

#[test]
fn the_check_finds_normal_build_target_and_renamed_uses_but_not_dev_ones() {
    let manifest: toml::Table = toml::from_str(
        r#"
        [dependencies]
        cloister-test-support.workspace = true
        [build-dependencies]
        fixtures = { package = "cloister-test-support", path = "x" }
        [target.'cfg(unix)'.dependencies]
        cloister-test-support = "0.1"
        [dev-dependencies]
        cloister-test-support.workspace = true
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shipped_uses(&manifest),
        [
            "[dependencies] cloister-test-support",
            "[build-dependencies] fixtures",
            "[target.cfg(unix).dependencies] cloister-test-support",
        ]
    );
    let dev_only: toml::Table =
        toml::from_str("[dev-dependencies]\ncloister-test-support.workspace = true\n")
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(shipped_uses(&dev_only).is_empty());
}
