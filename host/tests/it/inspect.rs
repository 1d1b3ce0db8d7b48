//! `component_interfaces` reads a component's outer imports and exports
//! without compiling it: they must be exactly what the engine reads.

use std::collections::BTreeSet;

use cloister_host::{LoadError, component_interfaces};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::wasi::{built, fixture};

/// The names the engine reads from a compiled component.
fn as_compiled(component: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).expect("engine");
    let compiled = Component::new(&engine, component).expect("compiles");
    let ty = compiled.component_type();
    let names = |items: &mut dyn Iterator<Item = &str>| items.map(str::to_owned).collect();
    (
        names(&mut ty.imports(&engine).map(|(name, _)| name)),
        names(&mut ty.exports(&engine).map(|(name, _)| name)),
    )
}

#[test]
fn declared_interfaces_are_the_ones_the_engine_reads() {
    // A Rust plugin, and a fixture with WASI imports and nested modules
    // that import and export names of their own.
    for component in [built("summarise"), fixture("wasi-guest")] {
        let (imports, exports) = component_interfaces(&component).expect("a component");
        let declared: (BTreeSet<String>, BTreeSet<String>) =
            (imports.into_iter().collect(), exports.into_iter().collect());
        assert!(!declared.0.is_empty());
        assert!(declared.1.contains("run"));
        assert_eq!(declared, as_compiled(&component));
    }
}

#[test]
fn bytes_that_are_no_valid_component_are_refused() {
    let mut truncated = built("summarise");
    truncated.truncate(truncated.len() / 2);
    let core_module = wat::parse_str("(module)").expect("wat");
    for bytes in [truncated, core_module, b"not wasm".to_vec()] {
        let error = component_interfaces(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{} bytes read as a component", bytes.len()));
        assert!(
            matches!(error, LoadError::InvalidComponent { .. }),
            "{error:?}"
        );
    }
}
