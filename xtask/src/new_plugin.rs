//! `cargo xtask new-plugin`: a new feature from a template.
//!
//! `xtask/template/common/` holds what every plugin has (its WIT world,
//! its scenarios and the one-line test target that runs them),
//! `xtask/template/<language>/` the code, the Cargo package and the
//! manifest of one language. Every `*.in` file is copied with `{{name}}`,
//! `{{type}}` and `{{crate}}` filled in and `.in` dropped: the language's
//! `manifest.toml.in` to `policies/plugins/<name>.toml`, every other file
//! to the same place under `plugins/<name>/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};

use crate::guest::Language;

/// The template folder of `language`, under `xtask/template`.
fn folder(language: Language) -> &'static str {
    match language {
        Language::Rust => "rust",
        Language::Python => "python",
        Language::Js => "js",
    }
}

/// The template file that becomes the plugin's manifest.
const MANIFEST: &str = "manifest.toml.in";

/// Creates `plugins/<name>` (package, code, WIT world, scenarios) and
/// `policies/plugins/<name>.toml` from the template of `language`, and
/// nothing else: the workspace takes every folder of `plugins/` as a member.
pub(crate) fn new_plugin(root: &Path, name: &str, language: Language) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !name.starts_with('-'),
        "plugin names are lowercase letters and dashes"
    );
    let dir = root.join("plugins").join(name);
    ensure!(!dir.exists(), "{} already exists", dir.display());
    let manifest = root.join("policies/plugins").join(format!("{name}.toml"));
    ensure!(!manifest.exists(), "{} already exists", manifest.display());
    let template = root.join("xtask/template");
    // `tone-check` names the Rust types of `tone-check-input`: `ToneCheckInput`.
    let type_name: String = name
        .split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect();
    let fill = |file: &Path| -> Result<String> {
        Ok(fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{crate}}", &name.replace('-', "_")))
    };
    let mut files = Vec::new();
    for folder in ["common", folder(language)] {
        template_files(&template.join(folder), Path::new(""), &mut files)?;
    }
    ensure!(
        files
            .iter()
            .any(|(_, relative)| relative == Path::new(MANIFEST)),
        "the {} template has no {MANIFEST}",
        folder(language)
    );
    for (source, relative) in files {
        let target = if relative == Path::new(MANIFEST) {
            manifest.clone()
        } else {
            dir.join(relative.with_extension(""))
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, fill(&source)?)?;
    }
    println!(
        "created plugins/{name} and policies/plugins/{name}.toml; next: `cargo xtask test-plugin {name}`"
    );
    Ok(())
}

/// The `*.in` files under `dir`, each with its path relative to the template folder.
fn template_files(dir: &Path, relative: &Path, found: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = relative.join(path.file_name().context("template file name")?);
        if path.is_dir() {
            template_files(&path, &name, found)?;
        } else if path.extension().is_some_and(|ext| ext == "in") {
            found.push((path, name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::plugin_crates;

    /// The scratch workspace's manifest.
    const WORKSPACE: &str = "[workspace]\nmembers = [\"plugins/*\"]\n";

    /// A scratch workspace with the real template.
    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("policies/plugins")).expect("mkdir");
        let mut files = Vec::new();
        let real = crate::workspace_root().join("xtask/template");
        template_files(&real, Path::new(""), &mut files).expect("template");
        for (source, relative) in files {
            let target = root.join("xtask/template").join(relative);
            fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            fs::copy(source, target).expect("copy template");
        }
        fs::write(root.join("Cargo.toml"), WORKSPACE).expect("write");
        dir
    }

    #[test]
    fn new_plugin_creates_crate_manifest_and_member() {
        let dir = scratch();
        new_plugin(dir.path(), "tone-check", Language::Rust).expect("created");
        let cargo =
            fs::read_to_string(dir.path().join("plugins/tone-check/Cargo.toml")).expect("crate");
        assert!(
            cargo.contains("name = \"tone-check\"") && cargo.contains("plugin = true"),
            "{cargo}"
        );
        let world =
            fs::read_to_string(dir.path().join("plugins/tone-check/wit/world.wit")).expect("world");
        assert!(
            world.contains("record tone-check-input") && world.contains("export run: func("),
            "{world}"
        );
        let lib =
            fs::read_to_string(dir.path().join("plugins/tone-check/src/lib.rs")).expect("lib");
        assert!(lib.contains("bindings::ToneCheckInput as Input"), "{lib}");
        assert!(
            dir.path()
                .join("plugins/tone-check/tests/it/main.rs")
                .exists(),
            "a test comes with it"
        );
        let manifest = fs::read_to_string(dir.path().join("policies/plugins/tone-check.toml"))
            .expect("manifest");
        assert!(
            manifest.contains("component = \"tone-check.wasm\""),
            "{manifest}"
        );
        assert!(
            !manifest.contains("{{"),
            "template fully filled: {manifest}"
        );
        let members = fs::read_to_string(dir.path().join("Cargo.toml")).expect("workspace");
        assert_eq!(members, WORKSPACE, "the workspace is not edited");
        let found = plugin_crates(dir.path()).expect("discover");
        assert_eq!(
            found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["tone-check"]
        );
    }

    #[test]
    fn new_plugin_rejects_bad_names_and_existing_plugins() {
        let dir = scratch();
        for bad in ["", "Upper", "-lead", "has space", "../escape"] {
            assert!(
                new_plugin(dir.path(), bad, Language::Rust).is_err(),
                "{bad:?} accepted"
            );
        }
        new_plugin(dir.path(), "once", Language::Python).expect("first");
        for language in [Language::Rust, Language::Python, Language::Js] {
            assert!(
                new_plugin(dir.path(), "once", language).is_err(),
                "second creation must fail"
            );
        }
    }

    #[test]
    fn every_language_makes_its_source_package_scenarios_and_manifest() {
        let dir = scratch();
        for (language, name, source, marker) in [
            (
                Language::Rust,
                "in-rust",
                "src/lib.rs",
                "bindings::InRustInput as Input",
            ),
            (
                Language::Python,
                "in-python",
                "app.py",
                "InPythonInput, InPythonOutput",
            ),
            (
                Language::Js,
                "in-js",
                "plugin.js",
                "export function run(input)",
            ),
        ] {
            new_plugin(dir.path(), name, language).expect("created");
            let plugin = dir.path().join("plugins").join(name);
            let code = fs::read_to_string(plugin.join(source)).expect("source");
            assert!(code.contains(marker), "{language:?}: {code}");
            let world = fs::read_to_string(plugin.join("wit/world.wit")).expect("world");
            assert!(
                world.contains(&format!("package cloister:{name}@")),
                "{world}"
            );
            let test = fs::read_to_string(plugin.join("tests/it/main.rs")).expect("test target");
            assert!(test.contains("scenario_tests!()"), "{test}");
            for scenario in ["plain-words.toml", "empty-text.toml"] {
                assert!(plugin.join("tests").join(scenario).exists(), "{scenario}");
            }
            let cargo = fs::read_to_string(plugin.join("Cargo.toml")).expect("package");
            assert!(cargo.contains(&format!("name = \"{name}\"")), "{cargo}");
            let manifest = fs::read_to_string(
                dir.path()
                    .join("policies/plugins")
                    .join(format!("{name}.toml")),
            )
            .expect("manifest");
            assert_eq!(
                language != Language::Rust,
                manifest.contains("\nwasi = "),
                "only Python and JavaScript runtimes import WASI: {manifest}"
            );
            for file in [code, world, test, cargo, manifest] {
                assert!(!file.contains("{{"), "template fully filled: {file}");
            }
        }
        let found = plugin_crates(dir.path()).expect("discover");
        assert_eq!(found.len(), 3, "every language's package is a plugin");
    }
}
