//! Host-side bindings generated from `wit/feature.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "cloister:feature/feature",
    imports: { default: trappable },
    with: {
        "cloister:feature/inference.token-stream": crate::capabilities::inference::TokenStream,
    },
});

pub use cloister::feature::{inference, log};
pub use exports::cloister::feature::handler;
