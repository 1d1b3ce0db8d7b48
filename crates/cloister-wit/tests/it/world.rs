//! A component's world against the world its source declares.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cloister_wit::WitWorld;
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{ManglingAndAbi, Resolve};

use crate::feature_wit;

/// A feature world in the form plugins declare theirs.
const WORLD: &str = r#"
/// Echoes text back.
package cloister:echo@0.1.0;

world echo {
    import cloister:feature/log@0.1.0;
    use cloister:feature/types@0.1.0.{feature-error};

    /// What the client sends.
    record echo-input {
        /// Text to echo; untrusted.
        text: string,
        times: u32,
    }

    /// Echoes `input.text`.
    export run: func(input: echo-input) -> result<string, feature-error>;
}
"#;

/// A component built from `world` (a module that does nothing, with the
/// world's imports and exports), as `build-plugins` would encode it.
fn component(world: &str) -> Vec<u8> {
    let shared = fs::read_to_string(feature_wit()).expect("feature.wit");
    let mut resolve = Resolve::default();
    resolve.push_str("feature.wit", &shared).expect("shared");
    let package = resolve.push_str("world.wit", world).expect("world");
    let world = resolve.select_world(&[package], None).expect("one world");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embed");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode")
}

fn source(dir: &Path, world: &str) -> WitWorld {
    let path = dir.join("world.wit");
    fs::write(&path, world).expect("write");
    WitWorld::from_source(&feature_wit(), &path).expect("source parses")
}

#[test]
fn a_component_agrees_with_the_source_it_was_built_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = WitWorld::from_component(&component(WORLD)).expect("decodes");
    let declared = source(dir.path(), WORLD);
    assert_eq!(declared.name(), "cloister:echo/echo@0.1.0");
    assert_eq!(declared.package(), "cloister:echo");
    assert_eq!(
        built.name(),
        "root:component/root",
        "a component keeps no world name"
    );
    assert_eq!(built.exports(), ["run"]);
    assert!(
        built
            .imports()
            .contains(&"cloister:feature/log@0.1.0".to_owned())
    );
    assert_eq!(
        built.imported_functions()["cloister:feature/log@0.1.0"],
        ["emit"]
    );
    assert_eq!(
        built.signature("run").as_deref(),
        Some("func(input: echo-input) -> result<string, feature-error>")
    );
    assert_eq!(
        built.differences(&declared, &BTreeSet::new()),
        Vec::<String>::new()
    );
    let wit = built.wit().expect("prints");
    assert!(wit.contains("record echo-input"), "{wit}");
    assert!(wit.contains("package cloister:feature@0.1.0"), "{wit}");
}

#[test]
fn a_changed_type_or_export_is_a_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = WitWorld::from_component(&component(WORLD)).expect("decodes");
    let cases = [
        (WORLD.replace("times: u32", "times: u64"), "times: u64"),
        (
            WORLD.replace("        times: u32,\n", ""),
            "record {text: string}",
        ),
        (
            WORLD.replace("    import cloister:feature/log@0.1.0;\n", ""),
            "the component imports `cloister:feature/log@0.1.0`, its source does not",
        ),
        (
            WORLD.replace(
                "export run",
                "export describe: func() -> string;\n    export run",
            ),
            "its source exports `describe`, the component does not",
        ),
    ];
    for (changed, expected) in cases {
        let differences = built.differences(&source(dir.path(), &changed), &BTreeSet::new());
        assert!(
            differences.iter().any(|d| d.contains(expected)),
            "expected a difference mentioning `{expected}`: {differences:?}"
        );
    }
}

#[test]
fn what_is_not_a_component_is_refused() {
    assert!(WitWorld::from_component(b"\0asm not really").is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("world.wit");
    fs::write(&path, "package a:b;\ninterface i {}\n").expect("write");
    let error = WitWorld::from_source(&feature_wit(), &path).expect_err("no world");
    assert!(error.to_string().contains("exactly one world"), "{error}");
}
