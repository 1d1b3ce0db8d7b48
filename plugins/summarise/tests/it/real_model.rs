//! The summarise component with the real model (SmolLM2-135M-Instruct on
//! candle): the answer is a short summary that talks about the conversation.
//! Needs the model: `inference/fetch-model.sh` (run by `cargo xtask test`).

use cloister_api::Summary;
use cloister_plugin_testkit::{TestKit, real_engine, request_from};

#[test]
fn summarises_the_sample_conversation_about_its_content() {
    let engine = real_engine().expect("model installed by inference/fetch-model.sh");
    let kit = TestKit::for_plugin("summarise")
        .expect("kit")
        .engine(engine)
        .build()
        .expect("loads");
    let request = request_from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/team-lunch.json"
    ))
    .expect("sample");
    let Summary {
        text,
        messages_covered,
    } = kit
        .run(request)
        .expect("summary")
        .decode()
        .expect("not a summary");
    println!("summary: {text}");
    assert_eq!(messages_covered, 6);
    let words = text.split_whitespace().count();
    assert!((3..=50).contains(&words), "{words} words: {text}");
    let lower = text.to_lowercase();
    let topical = [
        "lunch",
        "friday",
        "alice",
        "bruno",
        "chen",
        "table",
        "trattoria",
        "restaurant",
        "book",
    ];
    assert!(
        topical.iter().filter(|w| lower.contains(*w)).count() >= 2,
        "off-topic summary: {text}"
    );
    assert!(
        !lower.contains("<conversation>") && !lower.contains("<|"),
        "markup leaked: {text}"
    );
}
