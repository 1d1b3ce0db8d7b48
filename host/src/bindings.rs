//! Host-side bindings of the shared interfaces (`wit/feature.wit`, world
//! `cloister:feature/capabilities`). A feature's own `run` is called
//! through wasmtime's dynamic API with the types its component declares.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "cloister:feature/capabilities",
    imports: { default: trappable },
    with: {
        "cloister:feature/inference.token-stream": crate::capabilities::inference::TokenStream,
    },
});

pub use cloister::feature::{inference, log};
