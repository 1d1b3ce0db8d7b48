//! Host capabilities, one self-contained module each.
//!
//! Modelled on Spin's "factors": a capability module owns
//!
//! * its manifest section ([`Capability::Grant`], a top-level key of the
//!   plugin manifest named as the capability, e.g. `[inference]` or
//!   `wasi = [...]`) and the check of that grant ([`Capability::check_grant`]);
//! * its per-host state and configuration (the type implementing
//!   [`Capability`], built once);
//! * its per-instance state ([`Capability::Instance`], built for each
//!   request and dropped with the store);
//! * its linker wiring ([`Capability::add_to_linker`]), which reaches the
//!   per-instance state through a getter ([`Get`]), never through the
//!   combined store data.
//!
//! # Adding a capability
//!
//! Write a module implementing [`Capability`] and name it in the one
//! `capability_set!` invocation below (`name: module::Type`). The manifest
//! section, the import check, the linker and the store data follow from that
//! line; only [`Capabilities::new`] (what the host hands each capability at
//! start) is written by hand.

pub mod inference;
pub mod log;
pub mod wasi;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use cloister_ratls::Cancellation;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use wasmtime::component::Linker;

use crate::limits::Limiter;

/// What a capability knows about the instance it is building state for.
#[derive(Debug, Clone, Copy)]
pub struct InstanceContext<'a> {
    /// The manifest's name, shared, so that per-request state (log records)
    /// can name the plugin without allocating.
    pub plugin: &'a Arc<str>,
    /// Every capability's section of the plugin's manifest, shared so that
    /// instance state can keep it without copying it for every request.
    pub grants: &'a Arc<Grants>,
    /// When the request started.
    pub started: Instant,
    /// When the request's wall-time budget ends.
    pub deadline: Instant,
    /// Set once the request's caller gave up: host calls refuse to start
    /// more work.
    pub cancel: &'a Cancellation,
}

/// A manifest section that is inconsistent with the imports it grants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// An interface is imported without the section that budgets it.
    #[error("manifest grants {interface} but has no [{section}] section")]
    MissingSection {
        /// The granted interface.
        interface: &'static str,
        /// The section it needs.
        section: &'static str,
    },
    /// A limit is zero or a per-call budget exceeds the per-request one.
    #[error("manifest limit `{0}` is out of range")]
    BadLimit(&'static str),
    /// The `wasi` list names an interface the empty WASI context does not
    /// define, or not at a WASI 0.2 version.
    #[error(
        "manifest's `wasi` list names `{0}`, which is not a WASI 0.2 interface this host defines"
    )]
    UnknownWasiInterface(String),
}

/// Reaches one capability's per-instance state in a store's data `T`.
///
/// It is the getter of wasmtime's `add_to_linker::<T, D: HasData>(linker,
/// getter)` pattern, as a type rather than a function pointer, so that a
/// capability can compose it into the getters of several interfaces (WASI
/// links about twenty, each with its own view of the state).
pub trait Get<T>: 'static {
    /// The per-instance state reached.
    type Instance;
    /// The state inside `data`.
    fn get(data: &mut T) -> &mut Self::Instance;
}

/// One host capability: its per-host state.
pub trait Capability {
    /// The WIT interfaces it serves, as manifests grant them.
    const INTERFACES: &'static [&'static str];
    /// Its section of a plugin manifest; `()` when it has none.
    type Grant: Debug + Clone + Default + PartialEq + DeserializeOwned + Send + Sync + 'static;
    /// State for one instance; lives in the store and dies with it.
    type Instance: Send + 'static;

    /// Checks a manifest's section; `imports` are the interfaces it grants.
    ///
    /// # Errors
    /// The section is missing or inconsistent for what is granted.
    fn check_grant(_grant: &Self::Grant, _imports: &BTreeSet<String>) -> Result<(), GrantError> {
        Ok(())
    }

    /// Whether the section allows importing `name`, an interface outside
    /// every capability's [`Capability::INTERFACES`] (WASI's `wasi:*`).
    fn allows_import(_grant: &Self::Grant, _name: &str) -> bool {
        false
    }

    /// Defines the capability's imports in `linker`, reaching the
    /// per-instance state of a store through `G`.
    ///
    /// # Errors
    /// An import is defined twice.
    fn add_to_linker<T, G>(linker: &mut Linker<T>) -> wasmtime::Result<()>
    where
        T: Send + 'static,
        G: Get<T, Instance = Self::Instance>;

    /// Builds the state of one instance.
    fn instance(&self, context: InstanceContext<'_>) -> Self::Instance;
}

/// Declares the set of capabilities: the manifest sections ([`Grants`]),
/// the per-host state ([`Capabilities`]), the store data ([`InstanceState`])
/// and the code that walks them, from one `name: module::Type` list.
macro_rules! capability_set {
    ($($(#[$doc:meta])* $name:ident: $module:ident::$ty:ident,)*) => {
        /// Every capability's section of a plugin manifest, each under the
        /// capability's name.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
        pub struct Grants {
            $(
                #[doc = concat!("The `", stringify!($name), "` capability's section.")]
                pub $name: <$module::$ty as Capability>::Grant,
            )*
        }

        /// Per-host state of every capability.
        pub struct Capabilities {
            $($(#[$doc])* pub $name: $module::$ty,)*
        }

        /// The data of one store: every capability's per-instance state plus
        /// the memory and table limiter.
        pub struct InstanceState {
            $($name: <$module::$ty as Capability>::Instance,)*
            pub(crate) limiter: Limiter,
        }

        /// One getter per capability, named as its field.
        mod getters {
            use super::{Capability, Get, InstanceState};
            $(
                #[allow(non_camel_case_types)]
                pub(super) struct $name;

                impl Get<InstanceState> for $name {
                    type Instance = <super::$module::$ty as Capability>::Instance;
                    fn get(data: &mut InstanceState) -> &mut Self::Instance {
                        &mut data.$name
                    }
                }
            )*
        }

        impl Capabilities {
            /// Every interface the host can serve (besides `wasi:*`, which
            /// manifests list under `wasi`).
            pub fn interfaces() -> Vec<&'static str> {
                [$(<$module::$ty as Capability>::INTERFACES),*].concat()
            }

            /// Checks every capability's section against `imports`.
            ///
            /// # Errors
            /// The first section that is inconsistent.
            pub fn check_grants(
                grants: &Grants,
                imports: &BTreeSet<String>,
            ) -> Result<(), GrantError> {
                $(<$module::$ty as Capability>::check_grant(&grants.$name, imports)?;)*
                Ok(())
            }

            /// Whether some capability's section allows importing `name`
            /// beyond the interfaces granted by name.
            pub fn allows_import(grants: &Grants, name: &str) -> bool {
                false $(|| <$module::$ty as Capability>::allows_import(&grants.$name, name))*
            }

            pub(crate) fn add_to_linker(
                linker: &mut Linker<InstanceState>,
            ) -> wasmtime::Result<()> {
                $(
                    <$module::$ty as Capability>::add_to_linker::<InstanceState, getters::$name>(
                        linker,
                    )?;
                )*
                Ok(())
            }

            pub(crate) fn instantiate(
                &self,
                context: InstanceContext<'_>,
                limiter: Limiter,
            ) -> InstanceState {
                InstanceState {
                    $($name: self.$name.instance(context),)*
                    limiter,
                }
            }
        }

        impl InstanceState {
            $(
                /// This capability's per-instance state.
                pub fn $name(&mut self) -> &mut <$module::$ty as Capability>::Instance {
                    &mut self.$name
                }
            )*
        }
    };
}

capability_set! {
    /// Text generation by the native engine.
    inference: inference::InferenceCapability,
    /// Typed, allow-listed log events.
    log: log::LogCapability,
    /// An empty WASI p2 context for components built by other toolchains.
    wasi: wasi::WasiCapability,
}

impl Capabilities {
    /// Every capability, serving inference from `engine` and filtering plugin
    /// events through `log`.
    pub fn new(
        engine: Arc<dyn cloister_inference::InferenceBackend>,
        log: Arc<crate::logfilter::LogFilter>,
    ) -> Self {
        Self {
            inference: inference::InferenceCapability::new(engine),
            log: log::LogCapability::new(log),
            wasi: wasi::WasiCapability,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn the_set_serves_inference_and_log_by_name() {
        assert_eq!(
            Capabilities::interfaces(),
            [inference::INTERFACE, log::INTERFACE]
        );
    }

    #[test]
    fn grants_parse_under_the_capability_names_and_refuse_strangers() {
        let grants: Grants = toml::from_str("wasi = [\"wasi:io/streams@0.2.9\"]").expect("parses");
        assert_eq!(grants.wasi, imports(&["wasi:io/streams@0.2.9"]));
        assert_eq!(grants.inference, None);
        let error = toml::from_str::<Grants>("network = true").expect_err("refused");
        assert!(error.to_string().contains("network"), "{error}");
    }

    #[test]
    fn imports_beyond_the_named_interfaces_need_a_section_that_allows_them() {
        let none = Grants::default();
        assert!(!Capabilities::allows_import(
            &none,
            "wasi:cli/environment@0.2.0"
        ));
        let wasi = Grants {
            wasi: imports(&["wasi:cli/environment@0.2.0"]),
            ..Grants::default()
        };
        assert!(Capabilities::allows_import(
            &wasi,
            "wasi:cli/environment@0.2.0"
        ));
        // Exactly as listed: another interface or another version is refused.
        assert!(!Capabilities::allows_import(&wasi, "wasi:cli/stdout@0.2.0"));
        assert!(!Capabilities::allows_import(
            &wasi,
            "wasi:cli/environment@0.2.9"
        ));
        assert!(!Capabilities::allows_import(&wasi, "evil:net/socket"));
    }

    #[test]
    fn every_section_is_checked() {
        let granted = imports(&[inference::INTERFACE]);
        assert_eq!(
            Capabilities::check_grants(&Grants::default(), &granted),
            Err(GrantError::MissingSection {
                interface: inference::INTERFACE,
                section: "inference",
            })
        );
        assert_eq!(
            Capabilities::check_grants(&Grants::default(), &imports(&[log::INTERFACE])),
            Ok(())
        );
        for bad in [
            "wasi:http/outgoing-handler@0.2.9",
            "wasi:io/streams",
            "wasi:io/streams@0.3.0",
            "wasi:io/streams@0.2.",
            "evil:io/streams@0.2.9",
        ] {
            let grants = Grants {
                wasi: imports(&[bad]),
                ..Grants::default()
            };
            assert_eq!(
                Capabilities::check_grants(&grants, &BTreeSet::new()),
                Err(GrantError::UnknownWasiInterface(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
