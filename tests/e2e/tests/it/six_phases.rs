//! The six phases as deployed, with a wiretap: every party its own process
//! ([`crate::chain`]), the host running the real model (SmolLM2 from
//! `target/models`), and `cloister summarise` and `cloister suggest` run as
//! the user runs them. The conversation carries a fresh random marker; it
//! must come back in the client's answers and appear nowhere else.
//!
//! The wiretap records every byte the relay, the gateway, the host, the
//! issuer and the ledger receive and send, through a TCP proxy in front of
//! each. The outer hops run in the parties' declared plain-HTTP loopback
//! mode (no `[tls]`, the client's `--insecure-plain-http`) ON PURPOSE:
//! recording TLS ciphertext would prove nothing about the layers inside it.
//! With the outer TLS off, what the recording shows is what OHTTP and the
//! RA-TLS session inside it leave visible to the relay, the gateway and the
//! host's network, and that must not include the conversation.

use std::path::Path;

use base64::Engine as _;

use crate::chain::{Chain, Engine, Options};

/// A secret of the conversation and the forms it is looked for in.
struct Secret {
    name: &'static str,
    /// Each form: what it is, its bytes, and whether case is ignored.
    forms: Vec<(String, Vec<u8>, bool)>,
}

impl Secret {
    fn new(name: &'static str, text: &str) -> Self {
        let raw = text.as_bytes();
        let utf16 = |big_endian: bool| -> Vec<u8> {
            text.encode_utf16()
                .flat_map(|unit| {
                    if big_endian {
                        unit.to_be_bytes()
                    } else {
                        unit.to_le_bytes()
                    }
                })
                .collect()
        };
        let mut forms = vec![
            ("raw".to_owned(), raw.to_vec(), true),
            ("UTF-16LE".to_owned(), utf16(false), true),
            ("UTF-16BE".to_owned(), utf16(true), true),
            ("hex".to_owned(), hex::encode(raw).into_bytes(), true),
        ];
        for (alphabet, engine) in [
            ("base64", &base64::engine::general_purpose::STANDARD_NO_PAD),
            (
                "base64url",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ),
        ] {
            // At each of the three alignments, the characters that encode
            // the secret's bits only (those around it depend on neighbours).
            for offset in 0..3 {
                let mut shifted = vec![0; offset];
                shifted.extend_from_slice(raw);
                let encoded = engine.encode(&shifted).into_bytes();
                let first = (8 * offset).div_ceil(6);
                let last = 8 * (offset + raw.len()) / 6;
                forms.push((
                    format!("{alphabet} at offset {offset}"),
                    encoded[first..last].to_vec(),
                    false,
                ));
            }
        }
        Self { name, forms }
    }

    /// The forms of this secret that `haystack` holds.
    fn found_in(&self, haystack: &[u8]) -> Vec<String> {
        let lowered = haystack.to_ascii_lowercase();
        self.forms
            .iter()
            .filter(|(_, needle, ignore_case)| {
                let (haystack, needle) = if *ignore_case {
                    (&lowered, needle.to_ascii_lowercase())
                } else {
                    (&haystack.to_vec(), needle.clone())
                };
                haystack.windows(needle.len()).any(|w| w == needle)
            })
            .map(|(form, _, _)| format!("{} ({form})", self.name))
            .collect()
    }
}

/// Random decimal digits: summarise's grounding keeps a conversation's
/// numbers and suggest's keeps the draft's, so the model's answers carry
/// the marker verbatim.
fn random_digits(count: usize) -> String {
    let mut bytes = vec![0; count];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut digits: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
    digits.replace_range(..1, "7");
    digits
}

/// A random lowercase word.
fn random_word(count: usize) -> String {
    let mut bytes = vec![0; count];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
    bytes.iter().map(|b| char::from(b'a' + b % 26)).collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_never_appears_outside_the_client_and_the_host() {
    let marker = random_digits(14);
    let words: Vec<String> = (0..3).map(|_| random_word(10)).collect();
    let mut secrets = vec![Secret::new("the marker", &marker)];
    // The split form: each word of it is looked for on its own.
    for word in &words {
        secrets.push(Secret::new("a word of the split marker", word));
    }

    // The search finds the marker among other bytes, at every alignment.
    for pad in 0..3 {
        let text = format!("{}{marker}yy", "x".repeat(pad));
        let encodings = [
            text.to_uppercase().into_bytes(),
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            base64::engine::general_purpose::STANDARD
                .encode(&text)
                .into_bytes(),
            base64::engine::general_purpose::URL_SAFE
                .encode(&text)
                .into_bytes(),
        ];
        for encoded in encodings {
            assert!(
                !secrets[0].found_in(&encoded).is_empty(),
                "not found in {}",
                String::from_utf8_lossy(&encoded)
            );
        }
    }

    // The user's own files: the conversations, kept outside the run's
    // directories.
    let inputs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let summarise = inputs.path().join("summarise.json");
    std::fs::write(
        &summarise,
        serde_json::json!({
            "feature": "summarise",
            "input": {
                "max-words": 40,
                "messages": [
                    {"sender": "Ann", "sent-at": 1_764_064_800,
                     "text": format!("The locker code for the parcel is {marker}, pick it up on Friday.")},
                    {"sender": "Ben", "sent-at": 1_764_065_040,
                     "text": format!("Thanks, {} is the shop, I will go after 5pm.", words.join(" "))},
                ]
            }
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let suggest = inputs.path().join("suggest.json");
    std::fs::write(
        &suggest,
        serde_json::json!({
            "feature": "suggest",
            "input": {
                "draft": format!("the locker code is {marker} see u friday at {}", words.join(" ")),
                "tone": "formal",
                "count": 1,
                "context": [],
            }
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let chain = Chain::start(Options::new(Engine::Model)).await;
    let mut leaks = Vec::new();
    let mut check = |place: String, bytes: &[u8]| {
        for secret in &secrets {
            for form in secret.found_in(bytes) {
                leaks.push(format!("{form} in {place}"));
            }
        }
    };

    // Phases 2 to 6, twice: summarise and suggest with the real model.
    let mut answers = String::new();
    for (feature, file) in [("summarise", &summarise), ("suggest", &suggest)] {
        let file = file.display().to_string();
        let output = chain.cloister(&[feature, &file]).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        println!("cloister {feature}:\n{stdout}");
        assert!(
            stdout.starts_with(&format!(
                "[AI answer by `{feature}` on a SIMULATED host (no hardware guarantee), release production #"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("attested host (SIMULATED platform: no hardware guarantee"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&marker),
            "the answer of `{feature}` carries the marker {marker}:\n{stdout}"
        );
        check(
            format!("the stderr of `cloister {feature}`"),
            &output.stderr,
        );
        answers.push_str(&stdout);
    }
    assert!(answers.contains("(covers 2 messages)"), "{answers}");
    assert!(answers.contains("\n1. "), "{answers}");

    // The recordings hold the plain HTTP of each hop: the wiretap works.
    for (tap, name, request) in [
        (&chain.relay_tap, "client -> relay", "POST /relay "),
        (&chain.gateway_tap, "relay -> gateway", "POST /gateway "),
        (&chain.host_tap, "gateway -> host", "POST /session "),
    ] {
        let recorded = tap.recorded();
        assert!(
            recorded.iter().any(|bytes| bytes
                .windows(request.len())
                .any(|w| w == request.as_bytes())),
            "the {name} recording holds no `{request}`"
        );
    }
    for (tap, name) in [
        (&chain.relay_tap, "relay"),
        (&chain.gateway_tap, "gateway"),
        (&chain.host_tap, "host"),
        (&chain.issuer_tap, "issuer"),
        (&chain.ledger_tap, "ledger"),
    ] {
        for (i, bytes) in tap.recorded().iter().enumerate() {
            check(
                format!("the bytes to and from the {name} (stream {i})"),
                bytes,
            );
        }
    }
    for (party, log) in chain.logs() {
        assert!(!log.is_empty(), "{party} logged nothing");
        check(format!("the log of {party}"), log.as_bytes());
    }
    let files = files_under(chain.dir.path());
    assert!(files.len() > 20, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        check(format!("{}", file.display()), &bytes);
    }
    assert!(
        leaks.is_empty(),
        "the conversation appeared outside the client and the host:\n{}",
        leaks.join("\n")
    );
}
