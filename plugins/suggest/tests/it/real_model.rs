//! The suggest component with the real model (SmolLM2-135M-Instruct on
//! candle): distinct rewrites that keep the draft's subject.
//! Needs the model: `inference/fetch-model.sh` (run by `cargo xtask test`).

use cloister_api::Suggestions;
use cloister_plugin_testkit::{TestKit, real_engine, request_from};

#[test]
fn rewrites_the_sample_draft_keeping_its_subject() {
    let engine = real_engine().expect("model installed by inference/fetch-model.sh");
    let kit = TestKit::for_plugin("suggest")
        .expect("kit")
        .engine(engine)
        .build()
        .expect("loads");
    let request = request_from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/running-late.json"
    ))
    .expect("sample");
    let Suggestions(items) = kit
        .run(request)
        .expect("suggestions")
        .decode()
        .expect("not suggestions");
    println!("suggestions: {items:#?}");
    assert!((1..=3).contains(&items.len()), "{items:?}");
    for item in &items {
        let lower = item.to_lowercase();
        assert!(
            !lower.contains("<draft>") && !lower.contains("<|"),
            "markup leaked: {item}"
        );
        let on_subject = [
            "late", "5", "traffic", "sorry", "apolog", "delay", "arrive", "meeting",
        ];
        assert!(
            on_subject.iter().any(|w| lower.contains(w)),
            "off-subject rewrite: {item}"
        );
    }
}
