//! Markdown of WIT declarations: every function with its signature, every
//! type with its fields or cases, and every doc comment, so that a reviewer
//! reads a package or a world without reading WIT.

use std::fmt::Write as _;

use wit_parser::{
    Docs, Function, FunctionKind, Handle, InterfaceId, PackageId, Resolve, Type, TypeDefKind,
    TypeId, TypeOwner, WorldId, WorldItem, WorldKey,
};

/// A type as WIT writes it where it is used: a named type by its name, an
/// anonymous one by its structure (`list<message>`).
pub(crate) fn type_name(resolve: &Resolve, ty: &Type) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    let name = |ty: &Type| type_name(resolve, ty);
    let optional = |ty: &Option<Type>| ty.as_ref().map_or("_".into(), name);
    match &def.kind {
        TypeDefKind::List(ty) => format!("list<{}>", name(ty)),
        TypeDefKind::FixedLengthList(ty, length) => format!("list<{}, {length}>", name(ty)),
        TypeDefKind::Map(key, value) => format!("map<{}, {}>", name(key), name(value)),
        TypeDefKind::Option(ty) => format!("option<{}>", name(ty)),
        TypeDefKind::Result(result) => match (&result.ok, &result.err) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", name(ok)),
            (ok, err) => format!("result<{}, {}>", optional(ok), optional(err)),
        },
        TypeDefKind::Tuple(tuple) => format!(
            "tuple<{}>",
            tuple.types.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
        TypeDefKind::Future(ty) => match ty {
            Some(ty) => format!("future<{}>", name(ty)),
            None => "future".into(),
        },
        TypeDefKind::Stream(ty) => match ty {
            Some(ty) => format!("stream<{}>", name(ty)),
            None => "stream".into(),
        },
        TypeDefKind::Handle(Handle::Own(resource)) => type_name(resolve, &Type::Id(*resource)),
        TypeDefKind::Handle(Handle::Borrow(resource)) => {
            format!("borrow<{}>", type_name(resolve, &Type::Id(*resource)))
        }
        TypeDefKind::Type(ty) => name(ty),
        kind => kind.as_str().into(),
    }
}

/// The name of a world's import or export: its own name, or an
/// interface's full name (`cloister:feature/log@0.1.0`).
pub(crate) fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => resolve
            .id_of(*id)
            .unwrap_or_else(|| "<anonymous interface>".into()),
    }
}

/// `func(a: t, ...) -> r`, without the implicit `self` of a method.
pub(crate) fn signature(resolve: &Resolve, function: &Function) -> String {
    let skip = usize::from(matches!(
        function.kind,
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
    ));
    let params = function
        .params
        .iter()
        .skip(skip)
        .map(|param| format!("{}: {}", param.name, type_name(resolve, &param.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let asynchronous = if function.kind.is_async() {
        "async "
    } else {
        ""
    };
    match (&function.kind, &function.result) {
        (FunctionKind::Constructor(_), _) | (_, None) => format!("{asynchronous}func({params})"),
        (_, Some(result)) => format!(
            "{asynchronous}func({params}) -> {}",
            type_name(resolve, result)
        ),
    }
}

/// A doc comment as paragraphs, followed by a blank line; nothing when empty.
fn paragraphs(docs: &Docs) -> String {
    match docs.contents.as_deref().map(str::trim_end) {
        Some(text) if !text.is_empty() => format!("{text}\n\n"),
        _ => String::new(),
    }
}

/// A doc comment on one line, for a table cell.
fn cell(docs: &Docs) -> String {
    docs.contents
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn hashes(level: usize) -> String {
    "#".repeat(level.clamp(1, 6))
}

/// One function: its heading, its signature as WIT and its doc comment.
fn function(resolve: &Resolve, function: &Function, level: usize) -> String {
    let name = function.item_name();
    format!(
        "{} `{name}`\n\n```wit\n{name}: {};\n```\n\n{}",
        hashes(level),
        signature(resolve, function),
        paragraphs(&function.docs)
    )
}

/// One type: its kind and name, its doc comment, and a table of its
/// fields, cases or flags (with their doc comments); a resource lists its
/// methods (`methods`, from the interface declaring it).
fn type_section(resolve: &Resolve, id: TypeId, methods: &[&Function], level: usize) -> String {
    let def = &resolve.types[id];
    let name = def.name.as_deref().unwrap_or("<anonymous>");
    let mut out = format!(
        "{} {} `{name}`\n\n{}",
        hashes(level),
        def.kind.as_str(),
        paragraphs(&def.docs)
    );
    let rows: Vec<[String; 3]> = match &def.kind {
        TypeDefKind::Record(record) => record
            .fields
            .iter()
            .map(|field| {
                [
                    field.name.clone(),
                    type_name(resolve, &field.ty),
                    cell(&field.docs),
                ]
            })
            .collect(),
        TypeDefKind::Variant(variant) => variant
            .cases
            .iter()
            .map(|case| {
                [
                    case.name.clone(),
                    case.ty
                        .as_ref()
                        .map_or_else(String::new, |ty| type_name(resolve, ty)),
                    cell(&case.docs),
                ]
            })
            .collect(),
        TypeDefKind::Enum(cases) => cases
            .cases
            .iter()
            .map(|case| [case.name.clone(), String::new(), cell(&case.docs)])
            .collect(),
        TypeDefKind::Flags(flags) => flags
            .flags
            .iter()
            .map(|flag| [flag.name.clone(), String::new(), cell(&flag.docs)])
            .collect(),
        _ => Vec::new(),
    };
    let head = match &def.kind {
        TypeDefKind::Record(_) => Some("| field | type | meaning |"),
        TypeDefKind::Variant(_) => Some("| case | payload | meaning |"),
        TypeDefKind::Enum(_) => Some("| case | | meaning |"),
        TypeDefKind::Flags(_) => Some("| flag | | meaning |"),
        _ => None,
    };
    if let Some(head) = head {
        let _ = writeln!(out, "{head}\n|---|---|---|");
        for [name, ty, meaning] in rows {
            let ty = if ty.is_empty() { ty } else { format!("`{ty}`") };
            let _ = writeln!(out, "| `{name}` | {ty} | {meaning} |");
        }
        out.push('\n');
    }
    match &def.kind {
        TypeDefKind::Type(ty) => {
            let _ = writeln!(out, "`type {name} = {}`\n", type_name(resolve, ty));
        }
        TypeDefKind::Resource => {
            for method in methods {
                out.push_str(&function(resolve, method, level + 1));
            }
        }
        _ => {}
    }
    out
}

/// Where a type comes from, for a world that `use`s it:
/// `cloister:feature/types@0.1.0`.
fn origin(resolve: &Resolve, id: TypeId) -> Option<(String, String)> {
    let def = &resolve.types[id];
    let TypeDefKind::Type(Type::Id(used)) = def.kind else {
        return None;
    };
    let TypeOwner::Interface(interface) = resolve.types[used].owner else {
        return None;
    };
    Some((def.name.clone()?, resolve.id_of(interface)?))
}

/// A world's own declarations (see [`crate::WitWorld::markdown`]), headings
/// starting at `level`.
pub(crate) fn world(resolve: &Resolve, id: WorldId, level: usize) -> String {
    let world = &resolve.worlds[id];
    let mut out = paragraphs(&world.docs);
    let functions = world.exports.values().filter_map(|item| match item {
        WorldItem::Function(function) => Some(function),
        _ => None,
    });
    for exported in functions {
        out.push_str(&function(resolve, exported, level));
    }
    let mut used = Vec::new();
    for item in world.imports.values() {
        let WorldItem::Type { id, .. } = item else {
            continue;
        };
        match origin(resolve, *id) {
            Some(shared) => used.push(shared),
            None => out.push_str(&type_section(resolve, *id, &[], level)),
        }
    }
    if !used.is_empty() {
        let _ = writeln!(out, "{} Types from shared interfaces\n", hashes(level));
        for (name, interface) in used {
            let _ = writeln!(out, "- `{name}` from `{interface}`");
        }
        out.push('\n');
    }
    out
}

/// One interface: its doc comment, its functions, then its types.
fn interface(resolve: &Resolve, id: InterfaceId, level: usize) -> String {
    let interface = &resolve.interfaces[id];
    let name = interface.name.as_deref().unwrap_or("<anonymous>");
    let mut out = format!(
        "{} interface `{name}`\n\n{}",
        hashes(level),
        paragraphs(&interface.docs)
    );
    let freestanding: Vec<&Function> = interface
        .functions
        .values()
        .filter(|function| function.kind.resource().is_none())
        .collect();
    if !freestanding.is_empty() {
        let _ = writeln!(out, "{} Functions\n", hashes(level + 1));
        for each in freestanding {
            out.push_str(&function(resolve, each, level + 2));
        }
    }
    if !interface.types.is_empty() {
        let _ = writeln!(out, "{} Types\n", hashes(level + 1));
        for &ty in interface.types.values() {
            if let Some((name, from)) = origin(resolve, ty) {
                let _ = writeln!(out, "- `{name}` from `{from}`\n");
                continue;
            }
            let methods: Vec<&Function> = interface
                .functions
                .values()
                .filter(|function| function.kind.resource() == Some(ty))
                .collect();
            out.push_str(&type_section(resolve, ty, &methods, level + 2));
        }
    }
    out
}

/// Every interface and world of a package, documented.
pub(crate) fn package(resolve: &Resolve, id: PackageId) -> String {
    let package = &resolve.packages[id];
    let mut out = format!(
        "# WIT package `{}`\n\n{}",
        package.name,
        paragraphs(&package.docs)
    );
    let _ = writeln!(out, "Interfaces: {}.\n", {
        let names: Vec<String> = package
            .interfaces
            .keys()
            .map(|name| format!("`{name}`"))
            .collect();
        names.join(", ")
    });
    for &interface_id in package.interfaces.values() {
        out.push_str(&interface(resolve, interface_id, 2));
    }
    for (name, &world_id) in &package.worlds {
        let world = &resolve.worlds[world_id];
        let _ = write!(out, "## world `{name}`\n\n{}", paragraphs(&world.docs));
        for (direction, items) in [("imports", &world.imports), ("exports", &world.exports)] {
            let names: Vec<String> = items
                .iter()
                .filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
                .map(|(key, _)| format!("`{}`", key_name(resolve, key)))
                .collect();
            if !names.is_empty() {
                let _ = writeln!(out, "It {direction} {}.\n", names.join(", "));
            }
        }
    }
    out
}
