//! A feature's input and output between the client's JSON and the
//! component's values, checked against the types its WIT declares.
//!
//! The host knows no feature's types at compile time: it reads them from the
//! component (the parameter and result types of its `run` export) and walks
//! the JSON and the type together. What does not fit the type is refused
//! before any plugin code runs, with the path of the offending value
//! (`input.messages[2].sent-at: expected u64, found string`).
//!
//! # The JSON form of each WIT type
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `u8` ... `u64`, `s8` ... `s64` | an integer in the type's range |
//! | `f32`, `f64` | a number (finite; `f32` within its range) |
//! | `char` | a string of exactly one character |
//! | `string` | a string |
//! | `list<T>`, `tuple<...>` | an array (a tuple's of exactly its length) |
//! | `record` | an object with the fields' kebab-case names; no other keys; a missing field is an error unless its type is an `option` |
//! | `variant` | an object with exactly one key, the case's name, whose value is the payload, or `null` for a case without one: `{"inference": {"busy": null}}` |
//! | `enum` | the case's name as a string |
//! | `flags` | an array of the set flags' names, each at most once |
//! | `option<T>` | `null` for `none`, else `T`'s form (so `option<option<T>>` cannot tell `none` from `some(none)`: both are `null`) |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}`, `null` for an absent payload |
//!
//! Resources, futures, streams, error contexts and maps cannot cross this
//! boundary: [`check_type`] refuses a signature that holds one, so such a
//! component does not load.
//!
//! # Bounds
//!
//! [`Bounds`] caps nesting depth, list lengths and string bytes while
//! converting the client's JSON; [`REQUEST_BOUNDS`] are the limits the host
//! already applies to a request: at most one session frame of JSON
//! ([`cloister_ratls::MAX_FRAME_LEN`]), nested at most as deep as the
//! JSON parser admits.

use std::fmt;

use cloister_ratls::MAX_FRAME_LEN;
use serde_json::{Map, Number, Value};
use wasmtime::component::Val;
use wasmtime::component::types::{Field, Type};

/// Limits on one converted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most levels of nested lists, records, tuples, variants, options and
    /// results.
    pub max_depth: usize,
    /// Most elements of one list.
    pub max_list_len: usize,
    /// Most bytes of one string.
    pub max_string_bytes: usize,
}

/// The bounds of a feature request: no string longer than a session frame,
/// no list with more elements than a frame could hold (each takes at least
/// two bytes, `0,`), and no deeper than `serde_json` parses (128).
pub const REQUEST_BOUNDS: Bounds = Bounds {
    max_depth: 128,
    max_list_len: MAX_FRAME_LEN / 2,
    max_string_bytes: MAX_FRAME_LEN,
};

/// A value that does not fit its declared type, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ValueError {
    /// Where, from the root (`input.messages[2].sent-at`).
    pub path: String,
    /// What is wrong there.
    pub problem: Problem,
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The JSON has another kind of value than the type needs.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The WIT type (`u64`, `record`, ...).
        expected: &'static str,
        /// The JSON kind found (`string`, `object`, ...).
        found: &'static str,
    },
    /// A number outside the type's range (or not an integer for one).
    #[error("{value} is out of range for {expected}")]
    OutOfRange {
        /// The WIT type.
        expected: &'static str,
        /// The number as written.
        value: String,
    },
    /// A record field without a value.
    #[error("missing field")]
    MissingField,
    /// A key that names no field of the record.
    #[error("unknown field")]
    UnknownField,
    /// A name that is no case of the enum, variant or flags.
    #[error("`{found}` is not one of: {expected}")]
    UnknownCase {
        /// The name given.
        found: String,
        /// The names allowed, comma-separated.
        expected: String,
    },
    /// A variant or result object without exactly one key.
    #[error("expected an object with exactly one key, found {found} keys")]
    NotOneCase {
        /// How many keys it had.
        found: usize,
    },
    /// A flag named twice.
    #[error("flag `{0}` is set twice")]
    DuplicateFlag(String),
    /// An array of the wrong length for a tuple.
    #[error("expected {expected} elements, found {found}")]
    WrongLength {
        /// The tuple's length.
        expected: usize,
        /// The array's.
        found: usize,
    },
    /// A list longer than [`Bounds::max_list_len`].
    #[error("{found} elements; at most {limit} are allowed")]
    ListTooLong {
        /// The bound.
        limit: usize,
        /// The list's length.
        found: usize,
    },
    /// A string longer than [`Bounds::max_string_bytes`].
    #[error("{found} bytes; at most {limit} are allowed")]
    StringTooLong {
        /// The bound.
        limit: usize,
        /// The string's bytes.
        found: usize,
    },
    /// Nested deeper than [`Bounds::max_depth`].
    #[error("nested deeper than {limit} levels")]
    TooDeep {
        /// The bound.
        limit: usize,
    },
    /// A type that cannot cross the boundary as JSON.
    #[error("{0} values cannot cross the feature boundary")]
    Unsupported(&'static str),
    /// A float that JSON cannot hold (NaN or infinite).
    #[error("{0} cannot be written as JSON")]
    NotRepresentable(String),
}

/// One step of a path.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where the walk is, kept as steps and written out only for an error.
struct Path<'a> {
    root: &'static str,
    steps: Vec<Step<'a>>,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root)?;
        for step in &self.steps {
            match step {
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl<'a> Path<'a> {
    fn new(root: &'static str) -> Self {
        Self {
            root,
            steps: Vec::new(),
        }
    }

    fn error(&self, problem: Problem) -> ValueError {
        ValueError {
            path: self.to_string(),
            problem,
        }
    }

    /// Runs `f` one step further down.
    fn at<T>(&mut self, step: Step<'a>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.steps.push(step);
        let result = f(self);
        self.steps.pop();
        result
    }
}

/// The WIT name of a type, for errors.
fn type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "own",
        Type::Borrow(_) => "borrow",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
        Type::FixedLengthList(_) => "fixed-length-list",
    }
}

/// The JSON kind of a value, for errors.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Refuses a type that holds anything JSON cannot carry (resources,
/// futures, streams, error contexts, maps), naming where; `root` names the
/// value (`input`, `output`).
pub fn check_type(ty: &Type, root: &'static str) -> Result<(), ValueError> {
    fn nested(ty: &Type, step: &str, path: &mut String) -> Result<(), ValueError> {
        let len = path.len();
        path.push_str(step);
        let result = walk(ty, path);
        path.truncate(len);
        result
    }
    fn walk(ty: &Type, path: &mut String) -> Result<(), ValueError> {
        match ty {
            Type::List(list) => nested(&list.ty(), "[]", path),
            Type::FixedLengthList(list) => nested(&list.ty(), "[]", path),
            Type::Record(record) => record
                .fields()
                .try_for_each(|field| nested(&field.ty, &format!(".{}", field.name), path)),
            Type::Tuple(tuple) => tuple
                .types()
                .enumerate()
                .try_for_each(|(index, ty)| nested(&ty, &format!("[{index}]"), path)),
            Type::Variant(variant) => variant.cases().try_for_each(|case| match &case.ty {
                Some(ty) => nested(ty, &format!(".{}", case.name), path),
                None => Ok(()),
            }),
            Type::Option(option) => walk(&option.ty(), path),
            Type::Result(result) => {
                if let Some(ok) = result.ok() {
                    nested(&ok, ".ok", path)?;
                }
                match result.err() {
                    Some(err) => nested(&err, ".err", path),
                    None => Ok(()),
                }
            }
            Type::Map(_)
            | Type::Own(_)
            | Type::Borrow(_)
            | Type::Future(_)
            | Type::Stream(_)
            | Type::ErrorContext => Err(ValueError {
                path: path.clone(),
                problem: Problem::Unsupported(type_name(ty)),
            }),
            _ => Ok(()),
        }
    }
    walk(ty, &mut root.to_owned())
}

/// The component value of `json` for `ty`, or where it does not fit;
/// `root` names the value in errors (`input`).
pub fn to_val(
    ty: &Type,
    json: &Value,
    bounds: &Bounds,
    root: &'static str,
) -> Result<Val, ValueError> {
    Reader { bounds, depth: 0 }.read(ty, json, &mut Path::new(root))
}

/// Converts JSON to values, counting depth.
struct Reader<'b> {
    bounds: &'b Bounds,
    depth: usize,
}

impl Reader<'_> {
    fn read<'j>(
        &mut self,
        ty: &Type,
        json: &'j Value,
        path: &mut Path<'j>,
    ) -> Result<Val, ValueError> {
        let wrong = |path: &Path<'_>| {
            path.error(Problem::WrongType {
                expected: type_name(ty),
                found: json_kind(json),
            })
        };
        match ty {
            Type::Bool => json.as_bool().map(Val::Bool).ok_or_else(|| wrong(path)),
            Type::U8 => unsigned(json, ty, path).map(Val::U8),
            Type::U16 => unsigned(json, ty, path).map(Val::U16),
            Type::U32 => unsigned(json, ty, path).map(Val::U32),
            Type::U64 => unsigned(json, ty, path).map(Val::U64),
            Type::S8 => signed(json, ty, path).map(Val::S8),
            Type::S16 => signed(json, ty, path).map(Val::S16),
            Type::S32 => signed(json, ty, path).map(Val::S32),
            Type::S64 => signed(json, ty, path).map(Val::S64),
            Type::Float32 => {
                let x = float(json, ty, path)?;
                if x.abs() > f64::from(f32::MAX) {
                    return Err(out_of_range(json, ty, path));
                }
                // Rounds to the nearest f32, as any JSON reader does.
                Ok(Val::Float32(x as f32))
            }
            Type::Float64 => float(json, ty, path).map(Val::Float64),
            Type::Char => {
                let text = json.as_str().ok_or_else(|| wrong(path))?;
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(Val::Char(c)),
                    _ => Err(path.error(Problem::WrongLength {
                        expected: 1,
                        found: text.chars().count(),
                    })),
                }
            }
            Type::String => {
                let text = json.as_str().ok_or_else(|| wrong(path))?;
                if text.len() > self.bounds.max_string_bytes {
                    return Err(path.error(Problem::StringTooLong {
                        limit: self.bounds.max_string_bytes,
                        found: text.len(),
                    }));
                }
                Ok(Val::String(text.to_owned()))
            }
            Type::List(list) => {
                let items = self.array(json, ty, path)?;
                let element = list.ty();
                self.nested(path, |reader, path| {
                    reader
                        .elements(items, std::iter::repeat(&element), path)
                        .map(Val::List)
                })
            }
            Type::FixedLengthList(list) => {
                let items = self.array(json, ty, path)?;
                exact_length(items, list.len() as usize, path)?;
                let element = list.ty();
                self.nested(path, |reader, path| {
                    reader
                        .elements(items, std::iter::repeat(&element), path)
                        .map(Val::FixedLengthList)
                })
            }
            Type::Tuple(tuple) => {
                let items = self.array(json, ty, path)?;
                let types: Vec<Type> = tuple.types().collect();
                exact_length(items, types.len(), path)?;
                self.nested(path, |reader, path| {
                    reader.elements(items, types.iter(), path).map(Val::Tuple)
                })
            }
            Type::Record(record) => {
                let object = json.as_object().ok_or_else(|| wrong(path))?;
                let fields: Vec<Field<'_>> = record.fields().collect();
                if let Some(unknown) = object
                    .keys()
                    .find(|key| !fields.iter().any(|f| f.name == key.as_str()))
                {
                    return Err(path.at(Step::Key(unknown.as_str()), |p| {
                        p.error(Problem::UnknownField)
                    }));
                }
                self.nested(path, |reader, path| {
                    let mut values = Vec::with_capacity(fields.len());
                    for field in &fields {
                        let value = match (object.get_key_value(field.name), &field.ty) {
                            (Some((key, value)), _) => path.at(Step::Key(key.as_str()), |p| {
                                reader.read(&field.ty, value, p)
                            })?,
                            (None, Type::Option(_)) => Val::Option(None),
                            (None, _) => {
                                let missing = ValueError {
                                    path: format!("{path}.{}", field.name),
                                    problem: Problem::MissingField,
                                };
                                return Err(missing);
                            }
                        };
                        values.push((field.name.to_owned(), value));
                    }
                    Ok(Val::Record(values))
                })
            }
            Type::Variant(variant) => {
                let (name, payload) = one_case(json, ty, path)?;
                let Some(case) = variant.cases().find(|c| c.name == name) else {
                    let names: Vec<&str> = variant.cases().map(|c| c.name).collect();
                    return Err(unknown_case(name, &names, path));
                };
                let value = self.nested(path, |reader, path| {
                    path.at(Step::Key(name), |p| {
                        reader.payload(case.ty.as_ref(), payload, p)
                    })
                })?;
                Ok(Val::Variant(name.to_owned(), value))
            }
            Type::Enum(cases) => {
                let name = json.as_str().ok_or_else(|| wrong(path))?;
                if !cases.names().any(|case| case == name) {
                    let names: Vec<&str> = cases.names().collect();
                    return Err(unknown_case(name, &names, path));
                }
                Ok(Val::Enum(name.to_owned()))
            }
            Type::Flags(flags) => {
                let items = self.array(json, ty, path)?;
                let mut set: Vec<String> = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    path.at(Step::Index(index), |path| {
                        let name = item.as_str().ok_or_else(|| {
                            path.error(Problem::WrongType {
                                expected: "flag name",
                                found: json_kind(item),
                            })
                        })?;
                        if !flags.names().any(|flag| flag == name) {
                            let names: Vec<&str> = flags.names().collect();
                            return Err(unknown_case(name, &names, path));
                        }
                        if set.iter().any(|s| s == name) {
                            return Err(path.error(Problem::DuplicateFlag(name.to_owned())));
                        }
                        set.push(name.to_owned());
                        Ok(())
                    })?;
                }
                Ok(Val::Flags(set))
            }
            Type::Option(option) => match json {
                Value::Null => Ok(Val::Option(None)),
                some => self
                    .nested(path, |reader, path| reader.read(&option.ty(), some, path))
                    .map(|value| Val::Option(Some(Box::new(value)))),
            },
            Type::Result(result) => {
                let (name, payload) = one_case(json, ty, path)?;
                let ty = match name {
                    "ok" => result.ok(),
                    "err" => result.err(),
                    other => return Err(unknown_case(other, &["ok", "err"], path)),
                };
                let value = self.nested(path, |reader, path| {
                    path.at(Step::Key(name), |p| reader.payload(ty.as_ref(), payload, p))
                })?;
                Ok(Val::Result(if name == "ok" {
                    Ok(value)
                } else {
                    Err(value)
                }))
            }
            Type::Map(_)
            | Type::Own(_)
            | Type::Borrow(_)
            | Type::Future(_)
            | Type::Stream(_)
            | Type::ErrorContext => Err(path.error(Problem::Unsupported(type_name(ty)))),
        }
    }

    /// A variant's or result's payload: `null` when its type has none.
    fn payload<'j>(
        &mut self,
        ty: Option<&Type>,
        json: &'j Value,
        path: &mut Path<'j>,
    ) -> Result<Option<Box<Val>>, ValueError> {
        match (ty, json) {
            (None, Value::Null) => Ok(None),
            (None, other) => Err(path.error(Problem::WrongType {
                expected: "null (the case has no payload)",
                found: json_kind(other),
            })),
            (Some(ty), json) => self.read(ty, json, path).map(|v| Some(Box::new(v))),
        }
    }

    /// The elements of an array, each of its type.
    fn elements<'j, 't>(
        &mut self,
        items: &'j [Value],
        types: impl Iterator<Item = &'t Type>,
        path: &mut Path<'j>,
    ) -> Result<Vec<Val>, ValueError> {
        items
            .iter()
            .zip(types)
            .enumerate()
            .map(|(index, (item, ty))| path.at(Step::Index(index), |p| self.read(ty, item, p)))
            .collect()
    }

    /// `json` as an array no longer than the bounds allow.
    fn array<'j>(
        &self,
        json: &'j Value,
        ty: &Type,
        path: &Path<'_>,
    ) -> Result<&'j [Value], ValueError> {
        let items = json.as_array().ok_or_else(|| {
            path.error(Problem::WrongType {
                expected: type_name(ty),
                found: json_kind(json),
            })
        })?;
        if items.len() > self.bounds.max_list_len {
            return Err(path.error(Problem::ListTooLong {
                limit: self.bounds.max_list_len,
                found: items.len(),
            }));
        }
        Ok(items)
    }

    /// Runs `f` one level deeper, refusing to pass the depth bound.
    fn nested<'j, T>(
        &mut self,
        path: &mut Path<'j>,
        f: impl FnOnce(&mut Self, &mut Path<'j>) -> Result<T, ValueError>,
    ) -> Result<T, ValueError> {
        if self.depth >= self.bounds.max_depth {
            return Err(path.error(Problem::TooDeep {
                limit: self.bounds.max_depth,
            }));
        }
        self.depth += 1;
        let result = f(self, path);
        self.depth -= 1;
        result
    }
}

fn exact_length(items: &[Value], expected: usize, path: &Path<'_>) -> Result<(), ValueError> {
    if items.len() == expected {
        Ok(())
    } else {
        Err(path.error(Problem::WrongLength {
            expected,
            found: items.len(),
        }))
    }
}

fn unknown_case(found: &str, names: &[&str], path: &Path<'_>) -> ValueError {
    path.error(Problem::UnknownCase {
        found: found.to_owned(),
        expected: names.join(", "),
    })
}

/// The only key of a variant's or result's object, and its value.
fn one_case<'j>(
    json: &'j Value,
    ty: &Type,
    path: &Path<'_>,
) -> Result<(&'j str, &'j Value), ValueError> {
    let object = json.as_object().ok_or_else(|| {
        path.error(Problem::WrongType {
            expected: type_name(ty),
            found: json_kind(json),
        })
    })?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((name, payload)), None) => Ok((name.as_str(), payload)),
        _ => Err(path.error(Problem::NotOneCase {
            found: object.len(),
        })),
    }
}

fn out_of_range(json: &Value, ty: &Type, path: &Path<'_>) -> ValueError {
    path.error(Problem::OutOfRange {
        expected: type_name(ty),
        value: json.to_string(),
    })
}

fn number<'j>(json: &'j Value, ty: &Type, path: &Path<'_>) -> Result<&'j Number, ValueError> {
    match json {
        Value::Number(n) => Ok(n),
        other => Err(path.error(Problem::WrongType {
            expected: type_name(ty),
            found: json_kind(other),
        })),
    }
}

fn unsigned<T: TryFrom<u64>>(json: &Value, ty: &Type, path: &Path<'_>) -> Result<T, ValueError> {
    number(json, ty, path)?
        .as_u64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| out_of_range(json, ty, path))
}

fn signed<T: TryFrom<i64>>(json: &Value, ty: &Type, path: &Path<'_>) -> Result<T, ValueError> {
    number(json, ty, path)?
        .as_i64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| out_of_range(json, ty, path))
}

fn float(json: &Value, ty: &Type, path: &Path<'_>) -> Result<f64, ValueError> {
    number(json, ty, path)?
        .as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| out_of_range(json, ty, path))
}

/// The JSON of a component value (its types are in the value); `root` names
/// it in errors (`output`).
pub fn to_json(val: &Val, root: &'static str) -> Result<Value, ValueError> {
    write(val, &mut Path::new(root))
}

fn write<'v>(val: &'v Val, path: &mut Path<'v>) -> Result<Value, ValueError> {
    let float = |x: f64, path: &Path<'_>| {
        Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| path.error(Problem::NotRepresentable(x.to_string())))
    };
    Ok(match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        Val::Float32(x) => float(f64::from(*x), path)?,
        Val::Float64(x) => float(*x, path)?,
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                array.push(path.at(Step::Index(index), |p| write(item, p))?);
            }
            Value::Array(array)
        }
        Val::Record(fields) => {
            let mut object = Map::new();
            for (name, value) in fields {
                let value = path.at(Step::Key(name), |p| write(value, p))?;
                object.insert(name.clone(), value);
            }
            Value::Object(object)
        }
        Val::Variant(name, payload) => write_case(name, payload.as_deref(), path)?,
        Val::Enum(name) => Value::String(name.clone()),
        Val::Option(None) => Value::Null,
        Val::Option(Some(value)) => write(value, path)?,
        Val::Result(Ok(payload)) => write_case("ok", payload.as_deref(), path)?,
        Val::Result(Err(payload)) => write_case("err", payload.as_deref(), path)?,
        Val::Flags(names) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        Val::Map(_) => return Err(path.error(Problem::Unsupported("map"))),
        Val::Resource(_) => return Err(path.error(Problem::Unsupported("resource"))),
        Val::Future(_) => return Err(path.error(Problem::Unsupported("future"))),
        Val::Stream(_) => return Err(path.error(Problem::Unsupported("stream"))),
        Val::ErrorContext(_) => return Err(path.error(Problem::Unsupported("error-context"))),
    })
}

/// `{"name": payload}`, `null` for no payload.
fn write_case<'v>(
    name: &'v str,
    payload: Option<&'v Val>,
    path: &mut Path<'v>,
) -> Result<Value, ValueError> {
    let value = match payload {
        Some(value) => path.at(Step::Key(name), |p| write(value, p))?,
        None => Value::Null,
    };
    Ok(Value::Object(Map::from_iter([(name.to_owned(), value)])))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmtime::component::Component;
    use wasmtime::component::types::ComponentItem;
    use wasmtime::{Config, Engine};

    use super::*;

    /// A component whose exports take one value of every type JSON can
    /// carry (`all`, a record of them) and a resource (`res`).
    const TYPES: &str = r#"
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
    (func (export "take") (param i32) unreachable)
    (func (export "take-res") (param i32) unreachable))
  (core instance $i (instantiate $m))
  (type $inner-def (record (field "x" u32) (field "maybe" (option string))))
  (export $inner "inner" (type $inner-def))
  (type $choice-def (variant (case "nothing") (case "number" u32)))
  (export $choice "choice" (type $choice-def))
  (type $colour-def (enum "red" "green"))
  (export $colour "colour" (type $colour-def))
  (type $perms-def (flags "read" "write"))
  (export $perms "perms" (type $perms-def))
  (type $all-def (record
    (field "b" bool)
    (field "u8" u8) (field "u16" u16) (field "u32" u32) (field "u64" u64)
    (field "s8" s8) (field "s16" s16) (field "s32" s32) (field "s64" s64)
    (field "f32" f32) (field "f64" f64)
    (field "c" char) (field "s" string)
    (field "l" (list u32)) (field "t" (tuple u8 string))
    (field "r" $inner) (field "v" $choice) (field "e" $colour) (field "fl" $perms)
    (field "o" (option u32)) (field "res" (result u32 (error string)))
    (field "empty" (result)) (field "nested" (list (list $inner)))))
  (export $all "all" (type $all-def))
  (func $take (param "x" $all) (canon lift (core func $i "take") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "take" (func $take))
  (type $res-def (resource (rep i32)))
  (export $res "res" (type $res-def))
  (func $take-res (param "x" (own $res)) (canon lift (core func $i "take-res")))
  (export "take-res" (func $take-res)))
"#;

    /// The parameter type of the export `name`.
    fn param(name: &str) -> Type {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("engine");
        let bytes = wat::parse_str(TYPES).expect("wat");
        let component = Component::new(&engine, bytes).expect("component");
        let Some(ComponentItem::ComponentFunc(func)) = component
            .component_type()
            .get_export(&engine, name)
            .map(|export| export.ty)
        else {
            panic!("no export {name}");
        };
        func.params().next().expect("one parameter").1
    }

    fn all() -> Type {
        param("take")
    }

    /// The type of field `name` of `all`.
    fn field(name: &str) -> Type {
        let Type::Record(record) = all() else {
            panic!("a record");
        };
        record
            .fields()
            .find(|f| f.name == name)
            .map(|f| f.ty)
            .expect("field")
    }

    /// A value of `all` with every field set.
    fn full() -> Value {
        json!({
            "b": true,
            "u8": 255, "u16": 65535, "u32": 4_294_967_295u64, "u64": u64::MAX,
            "s8": -128, "s16": -32768, "s32": i32::MIN, "s64": i64::MIN,
            "f32": 1.5, "f64": -2.25,
            "c": "é", "s": "text",
            "l": [1, 2, 3], "t": [7, "seven"],
            "r": {"x": 1, "maybe": "yes"},
            "v": {"number": 4},
            "e": "green",
            "fl": ["write", "read"],
            "o": null,
            "res": {"err": "bad"},
            "empty": {"ok": null},
            "nested": [[], [{"x": 2, "maybe": null}]]
        })
    }

    fn read(ty: &Type, json: &Value) -> Result<Val, ValueError> {
        to_val(ty, json, &REQUEST_BOUNDS, "input")
    }

    fn error(ty: &Type, json: Value) -> String {
        read(ty, &json).expect_err("must not fit").to_string()
    }

    #[test]
    fn every_type_converts_both_ways_unchanged() {
        let value = read(&all(), &full()).expect("fits");
        let Val::Record(fields) = &value else {
            panic!("a record");
        };
        let get = |name: &str| &fields.iter().find(|(n, _)| n == name).expect(name).1;
        assert_eq!(get("u64"), &Val::U64(u64::MAX));
        assert_eq!(get("s8"), &Val::S8(-128));
        assert_eq!(get("f32"), &Val::Float32(1.5));
        assert_eq!(get("c"), &Val::Char('é'));
        assert_eq!(
            get("v"),
            &Val::Variant("number".into(), Some(Box::new(Val::U32(4))))
        );
        assert_eq!(get("e"), &Val::Enum("green".into()));
        assert_eq!(get("o"), &Val::Option(None));
        assert_eq!(
            get("res"),
            &Val::Result(Err(Some(Box::new(Val::String("bad".into())))))
        );
        assert_eq!(get("empty"), &Val::Result(Ok(None)));
        // Back to JSON: the same document (flags keep the order given).
        assert_eq!(to_json(&value, "output").expect("writes"), full());
    }

    #[test]
    fn absent_options_are_none_and_present_ones_some() {
        let mut input = full();
        let object = input.as_object_mut().expect("object");
        object.remove("o");
        let value = read(&all(), &input).expect("fits");
        let Val::Record(fields) = &value else {
            panic!("a record");
        };
        assert!(fields.contains(&("o".into(), Val::Option(None))));
        let some = read(&field("o"), &json!(5)).expect("fits");
        assert_eq!(some, Val::Option(Some(Box::new(Val::U32(5)))));
    }

    #[test]
    fn mismatches_name_the_path_and_the_problem() {
        let with = |path: &str, value: Value| {
            let mut input = full();
            let mut at = &mut input;
            let steps: Vec<&str> = path.split('.').collect();
            for step in &steps[..steps.len() - 1] {
                at = match step.parse::<usize>() {
                    Ok(index) => &mut at[index],
                    Err(_) => &mut at[*step],
                };
            }
            at[steps[steps.len() - 1]] = value;
            error(&all(), input)
        };
        let cases = [
            (
                with("u64", json!("1")),
                "input.u64: expected u64, found string",
            ),
            (with("b", json!(1)), "input.b: expected bool, found number"),
            (
                with("u8", json!(256)),
                "input.u8: 256 is out of range for u8",
            ),
            (with("u8", json!(-1)), "input.u8: -1 is out of range for u8"),
            (
                with("u32", json!(1.5)),
                "input.u32: 1.5 is out of range for u32",
            ),
            (
                with("s16", json!(40000)),
                "input.s16: 40000 is out of range for s16",
            ),
            (with("s64", json!(u64::MAX)), "is out of range for s64"),
            (
                with("f32", json!(1e39)),
                "input.f32: 1e+39 is out of range for f32",
            ),
            (
                with("f64", json!("x")),
                "input.f64: expected f64, found string",
            ),
            (
                with("c", json!("ab")),
                "input.c: expected 1 elements, found 2",
            ),
            (
                with("s", json!(null)),
                "input.s: expected string, found null",
            ),
            (with("l", json!({})), "input.l: expected list, found object"),
            (
                with("t", json!([1])),
                "input.t: expected 2 elements, found 1",
            ),
            (
                with("r.x", json!(true)),
                "input.r.x: expected u32, found bool",
            ),
            (with("r.extra", json!(1)), "input.r.extra: unknown field"),
            (
                with("v", json!({"other": 1})),
                "input.v: `other` is not one of: nothing, number",
            ),
            (
                with("v", json!({})),
                "input.v: expected an object with exactly one key, found 0 keys",
            ),
            (
                with("v", json!({"nothing": 1})),
                "input.v.nothing: expected null (the case has no payload), found number",
            ),
            (
                with("v", json!({"number": "4"})),
                "input.v.number: expected u32, found string",
            ),
            (
                with("e", json!("blue")),
                "input.e: `blue` is not one of: red, green",
            ),
            (with("e", json!(0)), "input.e: expected enum, found number"),
            (
                with("fl", json!(["read", "read"])),
                "input.fl[1]: flag `read` is set twice",
            ),
            (
                with("fl", json!(["exec"])),
                "input.fl[0]: `exec` is not one of: read, write",
            ),
            (
                with("fl", json!([1])),
                "input.fl[0]: expected flag name, found number",
            ),
            (
                with("res", json!({"maybe": 1})),
                "input.res: `maybe` is not one of: ok, err",
            ),
            (
                with("res", json!({"ok": "1"})),
                "input.res.ok: expected u32, found string",
            ),
            (
                with("nested", json!([[], [{"x": 1, "maybe": 2}]])),
                "input.nested[1][0].maybe: expected string, found number",
            ),
        ];
        for (got, expected) in cases {
            assert!(
                got.contains(expected),
                "`{got}` should contain `{expected}`"
            );
        }
        let mut missing = full();
        missing.as_object_mut().expect("object").remove("u8");
        assert_eq!(error(&all(), missing), "input.u8: missing field");
        assert_eq!(
            error(&all(), json!([])),
            "input: expected record, found array"
        );
    }

    #[test]
    fn bounds_cap_lists_strings_and_depth() {
        let bounds = Bounds {
            max_depth: 2,
            max_list_len: 3,
            max_string_bytes: 4,
        };
        let fits = |ty: &Type, json: Value| to_val(ty, &json, &bounds, "input").map(drop);
        assert!(fits(&field("l"), json!([1, 2, 3])).is_ok());
        assert_eq!(
            fits(&field("l"), json!([1, 2, 3, 4]))
                .expect_err("too long")
                .problem,
            Problem::ListTooLong { limit: 3, found: 4 }
        );
        assert!(fits(&field("s"), json!("four")).is_ok());
        assert_eq!(
            fits(&field("s"), json!("fünf"))
                .expect_err("too long")
                .problem,
            Problem::StringTooLong { limit: 4, found: 5 }
        );
        assert!(fits(&field("nested"), json!([[]])).is_ok());
        assert_eq!(
            fits(&field("nested"), json!([[{"x": 1}]])).expect_err("too deep"),
            ValueError {
                path: "input[0][0]".into(),
                problem: Problem::TooDeep { limit: 2 }
            }
        );
        assert_eq!(REQUEST_BOUNDS.max_string_bytes, MAX_FRAME_LEN);
    }

    #[test]
    fn resources_cannot_cross_and_are_refused_at_load() {
        let res = param("take-res");
        assert_eq!(
            check_type(&res, "input").expect_err("a resource"),
            ValueError {
                path: "input".into(),
                problem: Problem::Unsupported("own")
            }
        );
        assert!(check_type(&all(), "input").is_ok());
        assert_eq!(
            error(&res, json!(1)),
            "input: own values cannot cross the feature boundary"
        );
    }

    #[test]
    fn floats_json_cannot_hold_are_refused_on_output() {
        let value = Val::Record(vec![("score".into(), Val::Float64(f64::NAN))]);
        assert_eq!(
            to_json(&value, "output").expect_err("NaN").to_string(),
            "output.score: NaN cannot be written as JSON"
        );
        assert_eq!(
            to_json(&Val::Float32(f32::INFINITY), "output")
                .expect_err("infinite")
                .problem,
            Problem::NotRepresentable("inf".into())
        );
    }
}
