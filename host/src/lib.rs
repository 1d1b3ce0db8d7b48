//! The Cloister host: runs feature components under wasmtime, inside the
//! confidential VM, with nothing but budgeted inference and allow-listed logs.
//!
//! This is where the plaintext of a conversation exists, so the crate's job
//! is to make what can happen to it small and reviewable: a component gets
//! exactly the imports its reviewed manifest grants, runs in a fresh store
//! for one request, and leaves nothing behind; the only way out for data
//! other than the response is the log allow-list. The host library depends
//! on the inference *trait* only (`cloister-inference`); the `cloister-host`
//! binary (`host/cli`) chooses the engine.
//!
//! # How a request is served
//!
//! 1. At start-up the host reads the reviewed [`PolicySet`] (plugin
//!    manifests, log allow-list) and every component through read-only
//!    `cap-std` directory handles. A component is refused unless its SHA-256
//!    matches its manifest and every import is granted ([`LoadError`]). The
//!    digest of the policy set is what the CVM's HOST_DATA must be.
//! 2. Each component is compiled once into an `InstancePre`, cached by digest.
//! 3. [`Runtime::handle`] instantiates it in a fresh store for one request,
//!    with the manifest's memory, table, wall-time and output limits, calls
//!    `run`, and drops the store. A trap or a limit fails that request alone
//!    with a typed [`RunError`], which reaches the client as a
//!    [`cloister_api::RequestError`]: a stable code and its fields. The
//!    output limit counts every byte the client would receive for the
//!    answer (the JSON of the response or of the plugin's error); the
//!    wall-time limit holds in host calls too (WASI sleeps end at it); and
//!    a request whose caller gave up is stopped
//!    ([`Runtime::run_cancellable`]).
//!
//! # Capabilities
//!
//! Each capability in [`capabilities`] is one module owning its manifest
//! section and its check, its per-host state, its per-instance state and its
//! linker wiring (through a getter), after Spin's "factors". Today:
//! [`capabilities::inference`] (with its [`capabilities::inference::Budget`]
//! accounting), [`capabilities::log`] and an empty [`capabilities::wasi`]
//! context for components from other toolchains.
//!
//! # Serving
//!
//! [`config`] is the host's configuration as plain data; [`launch`] names
//! what a host runs by digests (`cloister-host measure`); [`serve`]
//! assembles a host in one place ([`Host::boot`]: configuration -> engine ->
//! capabilities -> runtime -> sessions -> server) and is its network face
//! (`cloister-host serve`): the RA-TLS session endpoint the gateway forwards
//! to, attested to those digests, with `/healthz` and aggregate `/metrics`.
//!
//! The library links the inference *trait* only ([`cloister_inference`]):
//! which engine serves the plugins is the caller's choice, made by the
//! `cloister-host` binary (package `cloister-host-cli`) from its own
//! `[inference]` configuration.
//!
//! # Logs
//!
//! Plugin events and the host's own `tracing` events pass the same
//! [`logfilter`]: what the allow-list does not name is dropped and counted,
//! every field is reduced to the buckets or labels the allow-list gives it,
//! and a request's plugin may emit only so many events, so that the log
//! lines of one request carry a bounded number of bits
//! ([`logfilter::AllowList::bits_per_request`], at most 64) whatever the
//! plugin does. A panic logs one `host-panicked` event and nothing of its
//! message ([`logfilter::install_panic_hook`]).
//!
//! # Cargo features
//!
//! None. The engine, and with it the GPU (`cuda`) build, is chosen by the
//! `cloister-host` binary.
//!
//! # Example
//!
//! The reviewed policy set of this repository, and its digest: one of the
//! three parts of the HOST_DATA a CVM running it is launched with.
//!
//! ```rust
//! use cap_std::ambient_authority;
//! use cap_std::fs::Dir;
//! use cloister_host::PolicySet;
//!
//! let policies = Dir::open_ambient_dir("../policies", ambient_authority())?;
//! let set = PolicySet::load(&policies)?;
//! assert!(set.manifests().iter().any(|manifest| manifest.name == "summarise"));
//!
//! let policy_set = set.digest()?;
//! assert_eq!(policy_set, cloister_attestation::policy_set_digest(set.named_contents())?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
pub mod capabilities;
pub mod config;
pub mod convert;
pub mod digest;
pub mod error;
pub mod fuzz_support;
pub mod inspect;
pub mod launch;
mod limits;
pub mod logfilter;
pub mod manifest;
pub mod policy;
pub mod runtime;
pub mod serve;

pub use config::HostConfig;
pub use digest::Digest;
pub use error::{LoadError, RunError};
pub use inspect::component_interfaces;
pub use launch::{LaunchDigests, host_binary_digest};
pub use manifest::PluginManifest;
pub use policy::PolicySet;
pub use runtime::{Profiler, RUN_EXPORT, Runtime, RuntimeConfig};
pub use serve::{Host, load_runtime};
