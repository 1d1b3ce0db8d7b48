//! What a feature component declares in WIT, read the way a reviewer reads it.
//!
//! A [`WitWorld`] is one world with the packages it uses, either decoded from
//! a built component ([`WitWorld::from_component`], the equivalent of
//! `wasm-tools component wit`) or parsed from source
//! ([`WitWorld::from_source`]: a plugin's `wit/world.wit` on top of the
//! shared `wit/feature.wit`). From it come the names of what the world
//! imports and exports, its WIT text, the [differences](WitWorld::differences)
//! between what a component was built with and what its source declares,
//! and Markdown documentation ([`WitWorld::markdown`], [`package_markdown`]).
//! A component keeps the contents of its world but not its name nor its
//! doc comments: those come from its source.
//!
//! `cargo xtask build-plugins` checks every component with it, and
//! `cloister-release review` writes the reviewer's page of each plugin from it.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use cloister_wit::WitWorld;
//!
//! let world = WitWorld::from_source_text(
//!     "package cloister:echo@0.1.0;\n\
//!      world echo {\n\
//!          /// What the client sends.\n\
//!          record echo-input { text: string }\n\
//!          export run: func(input: echo-input) -> result<string, string>;\n\
//!      }\n",
//! )?;
//! assert_eq!(world.name(), "cloister:echo/echo@0.1.0");
//! assert_eq!(world.exports(), ["run"]);
//! assert_eq!(
//!     world.signature("run").as_deref(),
//!     Some("func(input: echo-input) -> result<string, string>")
//! );
//! # Ok::<(), cloister_wit::WitError>(())
//! ```

mod markdown;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{
    Function, InterfaceId, Resolve, Type, TypeDefKind, TypeId, WorldId, WorldItem, WorldKey,
};

/// Why WIT could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WitError {
    /// The bytes are not a component, or its type information is unreadable.
    #[error("decoding the component: {0}")]
    Decode(String),
    /// The bytes are a WIT package, not a component.
    #[error("this is a WIT package, not a component")]
    NotAComponent,
    /// A WIT source file could not be read or parsed.
    #[error("reading {path}: {reason}")]
    Source {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The source declares no world, or more than one.
    #[error("{0} must declare exactly one world")]
    NoSingleWorld(String),
    /// The world belongs to no package.
    #[error("the world belongs to no package")]
    NoPackage,
    /// The WIT text could not be printed.
    #[error("printing WIT: {0}")]
    Print(String),
}

/// One world and every package it uses.
#[derive(Debug, Clone)]
pub struct WitWorld {
    resolve: Resolve,
    world: WorldId,
}

impl WitWorld {
    /// The world a component was built with, decoded from its type
    /// information.
    ///
    /// # Errors
    /// [`WitError::Decode`] or [`WitError::NotAComponent`].
    pub fn from_component(component: &[u8]) -> Result<Self, WitError> {
        match wit_component::decode(component) {
            Ok(DecodedWasm::Component(resolve, world)) => Ok(Self { resolve, world }),
            Ok(DecodedWasm::WitPackage(..)) => Err(WitError::NotAComponent),
            Err(error) => Err(WitError::Decode(format!("{error:#}"))),
        }
    }

    /// The one world of `world_file`, whose package may use the packages of
    /// `shared` (the shared `wit/feature.wit`).
    ///
    /// # Errors
    /// [`WitError::Source`] if a file cannot be read or parsed,
    /// [`WitError::NoSingleWorld`] if `world_file` does not declare one world.
    pub fn from_source(shared: &Path, world_file: &Path) -> Result<Self, WitError> {
        let mut resolve = Resolve::default();
        let source = |path: &Path, reason: String| WitError::Source {
            path: path.display().to_string(),
            reason,
        };
        resolve
            .push_file(shared)
            .map_err(|error| source(shared, format!("{error:#}")))?;
        let package = resolve
            .push_file(world_file)
            .map_err(|error| source(world_file, format!("{error:#}")))?;
        Self::only_world(resolve, package, &world_file.display().to_string())
    }

    /// The one world of a self-contained WIT text (tests, examples).
    ///
    /// # Errors
    /// As [`WitWorld::from_source`].
    pub fn from_source_text(text: &str) -> Result<Self, WitError> {
        let mut resolve = Resolve::default();
        let package = resolve
            .push_str("world.wit", text)
            .map_err(|error| WitError::Source {
                path: "world.wit".into(),
                reason: format!("{error:#}"),
            })?;
        Self::only_world(resolve, package, "world.wit")
    }

    fn only_world(
        resolve: Resolve,
        package: wit_parser::PackageId,
        path: &str,
    ) -> Result<Self, WitError> {
        let mut worlds = resolve.packages[package].worlds.values();
        match (worlds.next(), worlds.next()) {
            (Some(&world), None) => Ok(Self { resolve, world }),
            _ => Err(WitError::NoSingleWorld(path.to_owned())),
        }
    }

    /// The package declaring the world, without version: `cloister:summarise`
    /// (`root:component` for a decoded component, which keeps no name).
    #[must_use]
    pub fn package(&self) -> String {
        self.package_name()
            .map(|name| format!("{}:{}", name.namespace, name.name))
            .unwrap_or_default()
    }

    /// The world's full name: `cloister:summarise/summarise@0.1.0`
    /// (`root:component/root` for a decoded component).
    #[must_use]
    pub fn name(&self) -> String {
        let world = &self.resolve.worlds[self.world].name;
        match self.package_name() {
            Some(name) => match &name.version {
                Some(version) => {
                    format!("{}:{}/{world}@{version}", name.namespace, name.name)
                }
                None => format!("{}:{}/{world}", name.namespace, name.name),
            },
            None => world.clone(),
        }
    }

    fn package_name(&self) -> Option<&wit_parser::PackageName> {
        let package = self.resolve.worlds[self.world].package?;
        Some(&self.resolve.packages[package].name)
    }

    /// What the world imports: interfaces by name
    /// (`cloister:feature/log@0.1.0`) and functions; types are not imports.
    #[must_use]
    pub fn imports(&self) -> Vec<String> {
        self.named(&self.resolve.worlds[self.world].imports)
    }

    /// What the world exports, by name (`run`).
    #[must_use]
    pub fn exports(&self) -> Vec<String> {
        self.named(&self.resolve.worlds[self.world].exports)
    }

    fn named(&self, items: &wit_parser::IndexMap<WorldKey, WorldItem>) -> Vec<String> {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
            .map(|(key, _)| self.key_name(key))
            .collect()
    }

    fn key_name(&self, key: &WorldKey) -> String {
        markdown::key_name(&self.resolve, key)
    }

    /// The functions of each imported interface that the world imports, by
    /// interface name. A component imports only the functions its code
    /// calls, so this may be fewer than its source declares.
    #[must_use]
    pub fn imported_functions(&self) -> BTreeMap<String, Vec<String>> {
        self.interfaces(&self.resolve.worlds[self.world].imports)
            .map(|(name, id)| {
                let functions = self.resolve.interfaces[id]
                    .functions
                    .keys()
                    .cloned()
                    .collect();
                (name, functions)
            })
            .collect()
    }

    fn interfaces<'a>(
        &'a self,
        items: &'a wit_parser::IndexMap<WorldKey, WorldItem>,
    ) -> impl Iterator<Item = (String, InterfaceId)> + 'a {
        items.iter().filter_map(|(key, item)| match item {
            WorldItem::Interface { id, .. } => Some((self.key_name(key), *id)),
            _ => None,
        })
    }

    /// The WIT signature of an exported function, with its types named:
    /// `func(input: summarise-input) -> result<summary, feature-error>`.
    #[must_use]
    pub fn signature(&self, export: &str) -> Option<String> {
        self.exported_function(export)
            .map(|function| markdown::signature(&self.resolve, function))
    }

    fn exported_function(&self, export: &str) -> Option<&Function> {
        self.resolve.worlds[self.world]
            .exports
            .iter()
            .find_map(|(key, item)| match item {
                WorldItem::Function(function) if self.key_name(key) == export => Some(function),
                _ => None,
            })
    }

    /// The WIT text of the world's package followed by the packages it
    /// uses, as `wasm-tools component wit` prints it.
    ///
    /// # Errors
    /// [`WitError::NoPackage`], or [`WitError::Print`] if the printer fails.
    pub fn wit(&self) -> Result<String, WitError> {
        let package = self.resolve.worlds[self.world]
            .package
            .ok_or(WitError::NoPackage)?;
        let nested: Vec<_> = self
            .resolve
            .packages
            .iter()
            .map(|(id, _)| id)
            .filter(|id| *id != package)
            .collect();
        let mut printer = WitPrinter::default();
        printer
            .print(&self.resolve, package, &nested)
            .map_err(|error| WitError::Print(format!("{error:#}")))?;
        Ok(printer.output.to_string())
    }

    /// Where a component (`self`) and its source (`declared`) disagree, one
    /// sentence each; empty when they agree. They agree when they export
    /// the same functions with the same types, and every function the
    /// component imports is one its source imports, with the same types.
    /// Types are compared by structure and name (a record's name, fields
    /// and their types, in order), never by their position in a file.
    ///
    /// Interfaces in `runtime_imports` are left out: the ones a language's
    /// runtime imports on its own (WASI for Python and JavaScript), which
    /// the source does not declare and a manifest lists.
    ///
    /// Names of worlds and packages are not compared: a component keeps
    /// its world's contents, not its name (it decodes as
    /// `root:component/root`), nor doc comments, nor the functions of an
    /// imported interface it never calls.
    #[must_use]
    pub fn differences(&self, declared: &Self, runtime_imports: &BTreeSet<String>) -> Vec<String> {
        let mut differences = Vec::new();
        let (built, source) = (self.export_shapes(), declared.export_shapes());
        for (name, shape) in &built {
            match source.get(name) {
                None => differences.push(format!(
                    "the component exports `{name}`, its source does not"
                )),
                Some(declared) if declared != shape => differences.push(format!(
                    "export `{name}` is `{shape}` in the component, `{declared}` in its source"
                )),
                Some(_) => {}
            }
        }
        for name in source.keys().filter(|name| !built.contains_key(*name)) {
            differences.push(format!(
                "its source exports `{name}`, the component does not"
            ));
        }
        let source = declared.import_shapes();
        for (interface, functions) in self.import_shapes() {
            if runtime_imports.contains(&interface) {
                continue;
            }
            let Some(declared) = source.get(&interface) else {
                differences.push(format!(
                    "the component imports `{interface}`, its source does not"
                ));
                continue;
            };
            for (function, shape) in functions {
                match declared.get(&function) {
                    None => differences.push(format!(
                        "the component imports `{interface}.{function}`, its source does not declare it"
                    )),
                    Some(declared) if *declared != shape => differences.push(format!(
                        "`{interface}.{function}` is `{shape}` in the component, `{declared}` in its source"
                    )),
                    Some(_) => {}
                }
            }
        }
        differences
    }

    /// Each exported function's structural type, by export name.
    fn export_shapes(&self) -> BTreeMap<String, String> {
        let world = &self.resolve.worlds[self.world];
        let mut shapes = BTreeMap::new();
        for (key, item) in &world.exports {
            let name = self.key_name(key);
            match item {
                WorldItem::Function(function) => {
                    shapes.insert(name, self.function_shape(function));
                }
                WorldItem::Interface { id, .. } => {
                    for (function_name, function) in &self.resolve.interfaces[*id].functions {
                        shapes.insert(
                            format!("{name}.{function_name}"),
                            self.function_shape(function),
                        );
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
        shapes
    }

    /// Each imported function's structural type, by interface (functions
    /// imported alone are under the empty name).
    fn import_shapes(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let world = &self.resolve.worlds[self.world];
        let mut shapes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (key, item) in &world.imports {
            match item {
                WorldItem::Function(function) => {
                    shapes
                        .entry(String::new())
                        .or_default()
                        .insert(self.key_name(key), self.function_shape(function));
                }
                WorldItem::Interface { id, .. } => {
                    let functions = self.resolve.interfaces[*id]
                        .functions
                        .iter()
                        .map(|(name, function)| (name.clone(), self.function_shape(function)))
                        .collect();
                    shapes.insert(self.key_name(key), functions);
                }
                WorldItem::Type { .. } => {}
            }
        }
        shapes
    }

    fn function_shape(&self, function: &Function) -> String {
        let mut shape = String::from("func(");
        for (index, param) in function.params.iter().enumerate() {
            if index > 0 {
                shape.push_str(", ");
            }
            let _ = write!(shape, "{}: {}", param.name, self.shape(&param.ty));
        }
        shape.push(')');
        if let Some(result) = &function.result {
            let _ = write!(shape, " -> {}", self.shape(result));
        }
        shape
    }

    /// A type written out in full: named types keep their name and show
    /// their structure.
    fn shape(&self, ty: &Type) -> String {
        let Type::Id(id) = ty else {
            return markdown::type_name(&self.resolve, ty);
        };
        self.type_shape(*id)
    }

    fn type_shape(&self, id: TypeId) -> String {
        let def = &self.resolve.types[id];
        let shapes = |types: &mut dyn Iterator<Item = &Type>| {
            types
                .map(|ty| self.shape(ty))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let optional = |ty: &Option<Type>| ty.as_ref().map_or("_".into(), |ty| self.shape(ty));
        let body = match &def.kind {
            TypeDefKind::Record(record) => format!(
                "record {{{}}}",
                record
                    .fields
                    .iter()
                    .map(|field| format!("{}: {}", field.name, self.shape(&field.ty)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Variant(variant) => format!(
                "variant {{{}}}",
                variant
                    .cases
                    .iter()
                    .map(|case| match &case.ty {
                        Some(ty) => format!("{}({})", case.name, self.shape(ty)),
                        None => case.name.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Enum(cases) => format!(
                "enum {{{}}}",
                cases
                    .cases
                    .iter()
                    .map(|case| case.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Flags(flags) => format!(
                "flags {{{}}}",
                flags
                    .flags
                    .iter()
                    .map(|flag| flag.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Tuple(tuple) => format!("tuple<{}>", shapes(&mut tuple.types.iter())),
            TypeDefKind::Option(ty) => format!("option<{}>", self.shape(ty)),
            TypeDefKind::Result(result) => {
                format!(
                    "result<{}, {}>",
                    optional(&result.ok),
                    optional(&result.err)
                )
            }
            TypeDefKind::List(ty) => format!("list<{}>", self.shape(ty)),
            TypeDefKind::FixedLengthList(ty, length) => {
                format!("list<{}, {length}>", self.shape(ty))
            }
            TypeDefKind::Map(key, value) => {
                format!("map<{}, {}>", self.shape(key), self.shape(value))
            }
            TypeDefKind::Future(ty) => format!("future<{}>", optional(ty)),
            TypeDefKind::Stream(ty) => format!("stream<{}>", optional(ty)),
            TypeDefKind::Type(ty) => self.shape(ty),
            // A resource is known by its name; its methods are functions of its interface.
            TypeDefKind::Resource | TypeDefKind::Unknown => "resource".into(),
            TypeDefKind::Handle(wit_parser::Handle::Own(resource)) => {
                format!("own<{}>", self.type_shape(*resource))
            }
            TypeDefKind::Handle(wit_parser::Handle::Borrow(resource)) => {
                format!("borrow<{}>", self.type_shape(*resource))
            }
        };
        match &def.name {
            Some(name) => format!("{name}={body}"),
            None => body,
        }
    }

    /// Markdown of the world's own declarations: each exported function
    /// with its signature and doc comment, then every type the world
    /// declares, with its fields or cases and their doc comments.
    #[must_use]
    pub fn markdown(&self, heading: usize) -> String {
        markdown::world(&self.resolve, self.world, heading)
    }
}

/// Markdown documentation of every interface and world of the package
/// declared in `wit_file`: the page a reviewer reads for the shared
/// capability interfaces.
///
/// # Errors
/// [`WitError::Source`] if the file cannot be read or parsed.
pub fn package_markdown(wit_file: &Path) -> Result<String, WitError> {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_file(wit_file)
        .map_err(|error| WitError::Source {
            path: wit_file.display().to_string(),
            reason: format!("{error:#}"),
        })?;
    Ok(markdown::package(&resolve, package))
}
