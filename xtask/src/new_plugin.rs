//! `cargo xtask new-plugin`: a new feature from the template.

use std::fs;
use std::path::Path;

use anyhow::{Result, ensure};

/// The files of `xtask/template`.
#[cfg(test)]
const TEMPLATE_FILES: [&str; 5] = [
    "Cargo.toml.in",
    "lib.rs.in",
    "world.wit.in",
    "test.rs.in",
    "manifest.toml.in",
];

/// Creates `plugins/<name>` (crate, WIT world, test) and
/// `policies/plugins/<name>.toml` from the template, and nothing else: the
/// workspace takes every folder of `plugins/` as a member.
pub(crate) fn new_plugin(root: &Path, name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !name.starts_with('-'),
        "plugin names are lowercase letters and dashes"
    );
    let dir = root.join("plugins").join(name);
    ensure!(!dir.exists(), "{} already exists", dir.display());
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
    let fill = |file: &str| -> Result<String> {
        Ok(fs::read_to_string(template.join(file))?
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{crate}}", &name.replace('-', "_")))
    };
    for folder in ["src", "wit", "tests/it"] {
        fs::create_dir_all(dir.join(folder))?;
    }
    fs::write(dir.join("Cargo.toml"), fill("Cargo.toml.in")?)?;
    fs::write(dir.join("src/lib.rs"), fill("lib.rs.in")?)?;
    fs::write(dir.join("wit/world.wit"), fill("world.wit.in")?)?;
    fs::write(dir.join("tests/it/main.rs"), fill("test.rs.in")?)?;
    fs::write(
        root.join("policies/plugins").join(format!("{name}.toml")),
        fill("manifest.toml.in")?,
    )?;

    println!(
        "created plugins/{name} and policies/plugins/{name}.toml; next: `cargo xtask build-plugins`"
    );
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
        fs::create_dir_all(root.join("xtask/template")).expect("mkdir");
        fs::create_dir_all(root.join("policies/plugins")).expect("mkdir");
        let real = crate::workspace_root().join("xtask/template");
        for file in TEMPLATE_FILES {
            fs::copy(real.join(file), root.join("xtask/template").join(file))
                .expect("copy template");
        }
        fs::write(root.join("Cargo.toml"), WORKSPACE).expect("write");
        dir
    }

    #[test]
    fn new_plugin_creates_crate_manifest_and_member() {
        let dir = scratch();
        new_plugin(dir.path(), "tone-check").expect("created");
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
            assert!(new_plugin(dir.path(), bad).is_err(), "{bad:?} accepted");
        }
        new_plugin(dir.path(), "once").expect("first");
        assert!(
            new_plugin(dir.path(), "once").is_err(),
            "second creation must fail"
        );
    }
}
