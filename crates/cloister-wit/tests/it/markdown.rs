//! The generated documentation of the shared capability interfaces.

use std::fs;

use cloister_wit::{WitWorld, package_markdown};

use crate::feature_wit;

#[test]
fn the_capability_page_documents_every_function_type_and_doc_comment() {
    let page = package_markdown(&feature_wit()).expect("feature.wit documents");
    for function in [
        "generate",
        "generate-stream",
        "embed",
        "remaining-budget",
        "emit",
        "next",
        "finish",
    ] {
        assert!(
            page.contains(&format!("`{function}`")),
            "function {function} missing"
        );
    }
    for ty in [
        "enum `role`",
        "record `chat-message`",
        "variant `prompt`",
        "record `params`",
        "enum `finish-reason`",
        "variant `error`",
        "resource `token-stream`",
        "enum `event`",
        "enum `field-name`",
        "variant `field-value`",
        "variant `feature-error`",
        "record `limit-exceeded`",
    ] {
        assert!(page.contains(ty), "type {ty} missing");
    }
    // Every doc comment of the file appears, on one line or several.
    let source = fs::read_to_string(feature_wit()).expect("feature.wit");
    let flat: String = page.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in source.lines().map(str::trim) {
        if let Some(doc) = line.strip_prefix("///") {
            let doc = doc.trim();
            if !doc.is_empty() {
                let words: String = doc.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    flat.contains(&words.replace('|', "\\|")),
                    "doc comment missing: {doc}"
                );
            }
        }
    }
    assert!(
        page.contains("generate: func(model: string, prompt: prompt, params: params) -> result<generation, error>;"),
        "signatures are WIT"
    );
    assert!(
        page.contains("next: func() -> result<option<string>, error>;"),
        "methods without self"
    );
}

#[test]
fn a_world_page_documents_its_run_and_types() {
    let world = WitWorld::from_source_text(
        "package cloister:echo@0.1.0;\n\
         world echo {\n\
             /// What the client sends.\n\
             record echo-input {\n\
                 /// Text to echo | untrusted.\n\
                 text: string,\n\
             }\n\
             /// How it answers.\n\
             enum mood { calm, loud }\n\
             /// Echoes text.\n\
             export run: func(input: echo-input) -> result<mood, string>;\n\
         }\n",
    )
    .expect("parses");
    let page = world.markdown(3);
    assert!(page.contains("### `run`"), "{page}");
    assert!(
        page.contains("run: func(input: echo-input) -> result<mood, string>;"),
        "{page}"
    );
    assert!(page.contains("### record `echo-input`"), "{page}");
    assert!(
        page.contains("| `text` | `string` | Text to echo \\| untrusted. |"),
        "{page}"
    );
    assert!(page.contains("| `loud` |"), "{page}");
    assert!(page.contains("Echoes text."), "{page}");
}
