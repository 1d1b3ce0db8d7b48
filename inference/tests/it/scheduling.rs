//! Continuous batching and admission control.

use crate::common;

use std::ops::ControlFlow;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};

use cloister_inference::{FinishReason, InferenceBackend, InferenceError};
use common::{backend_with, chat, request};

const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Name three fruits.",
    "What colour is the sky?",
    "How many legs does a spider have?",
];

#[test]
fn concurrent_requests_share_forward_passes_and_match_solo_output() {
    // Whole prompts per pass: a prompt split into chunks attends in a
    // different floating-point order, which may flip a near tie under greedy
    // decoding; batching rows of the matrix products never does.
    let backend = Arc::new(backend_with(|c| {
        c.max_concurrent = 4;
        c.prefill_chunk = 1024;
    }));
    let solo: Vec<String> = QUESTIONS
        .iter()
        .map(|q| {
            backend
                .generate(&request(chat(q), 10), &mut |_| ControlFlow::Continue(()))
                .expect("solo generation")
                .text
        })
        .collect();
    let before = backend.stats();
    assert_eq!(
        before.batched_passes, 0,
        "sequential requests never share a pass"
    );

    let barrier = Arc::new(Barrier::new(QUESTIONS.len()));
    let threads: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            let (backend, barrier) = (Arc::clone(&backend), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                backend.generate(&request(chat(q), 10), &mut |_| ControlFlow::Continue(()))
            })
        })
        .collect();
    let batched: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("batched generation").text)
        .collect();

    // Greedy decoding: each sequence's own cache makes batching invisible.
    assert_eq!(batched, solo);
    let after = backend.stats();
    assert!(after.batched_passes > 0, "{after:?}");
    assert!(after.max_batch >= 2, "{after:?}");
    // The same tokens as alone, in fewer forward passes.
    assert_eq!(
        after.generated_tokens - before.generated_tokens,
        before.generated_tokens
    );
    assert!(
        after.forward_passes - before.forward_passes < before.forward_passes,
        "{before:?} {after:?}"
    );
    // The engine retires the sequences right after their last token.
    let mut settled = backend.stats();
    for _ in 0..1000 {
        if settled.retired == 8 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        settled = backend.stats();
    }
    assert_eq!(
        (settled.retired, settled.active, settled.queued),
        (8, 0, 0),
        "{settled:?}"
    );
}

#[test]
fn busy_once_the_batch_and_the_queue_are_full() {
    let backend = Arc::new(backend_with(|c| {
        c.max_concurrent = 1;
        c.queue_depth = 1;
    }));
    let (started, first_token) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let running = {
        let backend = Arc::clone(&backend);
        std::thread::spawn(move || {
            backend.generate(&request(chat("Tell me a story."), 500), &mut |_| {
                let _ = started.send(());
                // Hold the slot until the test says so, then cancel.
                if released.try_recv().is_ok() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        })
    };
    first_token.recv().expect("first request streams");
    let queued = {
        let backend = Arc::clone(&backend);
        std::thread::spawn(move || {
            backend.generate(&request(chat("Hello"), 2), &mut |_| {
                ControlFlow::Continue(())
            })
        })
    };
    while backend.stats().queued == 0 {
        std::thread::yield_now();
    }
    let refused = backend.generate(&request(chat("Hi"), 2), &mut |_| ControlFlow::Continue(()));
    assert_eq!(refused, Err(InferenceError::Busy));
    assert_eq!(backend.stats().rejected_busy, 1);

    release.send(()).expect("release");
    let first = running.join().expect("thread").expect("first generation");
    assert_eq!(first.finish, FinishReason::Cancelled);
    let second = queued.join().expect("thread").expect("queued generation");
    assert_eq!(second.usage.generated_tokens, 2);
}
