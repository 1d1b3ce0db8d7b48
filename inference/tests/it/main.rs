//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod common;
mod embedding;
mod generation;
mod loading;
mod qwen3;
mod scheduling;
mod tokenizer_parity;
