//! Modal's official message definitions, as the fake Modal server reads and writes
//! them: `modal_proto/api.proto` from the `modal` wheel on PyPI (version
//! [`MODAL_VERSION`], checked against [`WHEEL_SHA256`]), compiled at test time with
//! `protox` into a descriptor pool and used through `prost-reflect` dynamic messages.
//!
//! The fake never decodes with the provider's own `prost` structs: a request whose
//! method is not in the official `modal.client.ModalClient` service, or whose bytes
//! carry a field number `api.proto` does not define (anywhere in the message tree) or
//! a wire type other than the field's, is refused. Replies are built by official field
//! name, so a wrong tag on the provider's side loses the field and the behaviour
//! tests see it.
//!
//! The wheel is downloaded once (`python3 -m pip download`) and `api.proto` cached
//! under `target/modal-proto/<version>/`. When it cannot be had the Modal tests fail
//! saying so, unless the run opts out with `MODAL_PROTO_TESTS=skip` (printed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor, ReflectMessage,
    ServiceDescriptor, Value,
};
use sha2::Digest;

/// The last `modal` release whose wheel ships `modal_proto/api.proto` (later wheels
/// carry only the generated Python); its API still serves the `ContainerExec*` calls.
pub const MODAL_VERSION: &str = "1.3.4";
/// `sha256` of `modal-1.3.4-py3-none-any.whl` as PyPI serves it.
pub const WHEEL_SHA256: &str = "d66a851969f447936b3512f1c3708435ce1ca81171eeddc3eb0678f594493380";
/// The gRPC service of Modal's control plane.
pub const SERVICE: &str = "modal.client.ModalClient";

/// The compiled official definitions.
pub struct Official {
    pool: DescriptorPool,
    service: ServiceDescriptor,
}

pub use crate::fakes::Loaded;

static OFFICIAL: OnceLock<Result<Official, String>> = OnceLock::new();

/// The official definitions; panics with the reason when they cannot be had and the
/// run did not opt out, so no Modal test passes without them.
pub fn load() -> Loaded {
    if std::env::var("MODAL_PROTO_TESTS").is_ok_and(|value| value == "skip") {
        return Loaded::Skipped;
    }
    match OFFICIAL.get_or_init(|| cached_proto().and_then(|path| Official::compile(&path))) {
        Ok(_) => Loaded::Ready,
        Err(why) => panic!(
            "Modal's official api.proto (modal {MODAL_VERSION} on PyPI) is needed to check the Modal \
             provider and could not be had: {why}. Set MODAL_PROTO_TESTS=skip to run without the \
             Modal tests."
        ),
    }
}

/// The official definitions once [`load`] succeeded (the fake's handlers run only then).
pub fn get() -> &'static Official {
    match OFFICIAL.get() {
        Some(Ok(official)) => official,
        _ => panic!("the fake Modal server runs only after official::load()"),
    }
}

/// `api.proto`, from the cache or downloaded and verified.
fn cached_proto() -> Result<PathBuf, String> {
    let dir = crate::fakes::target_dir()
        .join("modal-proto")
        .join(MODAL_VERSION);
    let proto = dir.join("modal_proto/api.proto");
    if proto.is_file() {
        return Ok(dir);
    }
    let download = tempfile::tempdir().map_err(|error| error.to_string())?;
    let output = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--quiet",
        ])
        .arg(format!("modal=={MODAL_VERSION}"))
        .arg("-d")
        .arg(download.path())
        .output()
        .map_err(|error| format!("cannot run python3 -m pip: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "pip download modal=={MODAL_VERSION} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let wheel = download
        .path()
        .join(format!("modal-{MODAL_VERSION}-py3-none-any.whl"));
    let bytes = std::fs::read(&wheel).map_err(|error| format!("{}: {error}", wheel.display()))?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    if digest != WHEEL_SHA256 {
        return Err(format!(
            "the downloaded wheel's sha256 is {digest}, not the pinned {WHEEL_SHA256}"
        ));
    }
    // The wheel is a zip; Python (which pip needs anyway) reads it.
    let staging =
        tempfile::tempdir_in(crate::fakes::target_dir()).map_err(|error| error.to_string())?;
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('modal_proto/api.proto', sys.argv[2])",
        ])
        .arg(&wheel)
        .arg(staging.path())
        .output()
        .map_err(|error| format!("cannot run python3: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "the wheel holds no modal_proto/api.proto: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::create_dir_all(dir.parent().expect("the cache has a parent"))
        .map_err(|error| error.to_string())?;
    // Another test binary may have won the race; its copy is the same file.
    let _ = std::fs::rename(staging.keep(), &dir);
    proto
        .is_file()
        .then_some(dir)
        .ok_or_else(|| format!("{} was not written", proto.display()))
}

impl Official {
    fn compile(include: &Path) -> Result<Official, String> {
        let mut compiler = protox::Compiler::new([include]).map_err(|error| error.to_string())?;
        compiler
            .include_imports(true)
            .open_file("modal_proto/api.proto")
            .map_err(|error| format!("cannot compile api.proto: {error}"))?;
        let pool = compiler.descriptor_pool();
        let service = pool
            .get_service_by_name(SERVICE)
            .ok_or_else(|| format!("api.proto defines no {SERVICE}"))?;
        Ok(Official { pool, service })
    }

    /// The method of `modal.client.ModalClient` named `name`, if api.proto has it.
    pub fn method(&self, name: &str) -> Option<MethodDescriptor> {
        self.service.methods().find(|method| method.name() == name)
    }

    pub fn message(&self, full_name: &str) -> MessageDescriptor {
        self.pool
            .get_message_by_name(full_name)
            .unwrap_or_else(|| panic!("api.proto defines no message {full_name}"))
    }

    /// The number of an enum value by its name (`GENERIC_STATUS_SUCCESS`).
    pub fn enum_number(&self, enum_name: &str, value: &str) -> i32 {
        self.pool
            .get_enum_by_name(enum_name)
            .and_then(|descriptor| descriptor.get_value_by_name(value))
            .unwrap_or_else(|| panic!("api.proto defines no {enum_name}.{value}"))
            .number()
    }

    /// A request of `method` as api.proto defines it; an error naming what does not
    /// match (unknown field number, wrong wire type) otherwise.
    pub fn decode_request(&self, method: &MethodDescriptor, bytes: &[u8]) -> Result<Msg, String> {
        let message = DynamicMessage::decode(method.input(), bytes).map_err(|error| {
            format!(
                "{} does not decode as {}: {error}",
                method.name(),
                method.input().full_name()
            )
        })?;
        unknown_fields(&message)?;
        Ok(Msg(message))
    }

    /// `google.protobuf.Empty`, the reply of the calls that return nothing.
    pub fn empty(&self) -> Msg {
        Msg(DynamicMessage::new(self.message("google.protobuf.Empty")))
    }

    /// A new, empty message of `name` (`SandboxCreateResponse`, in `modal.client`).
    pub fn reply(&self, name: &str) -> Msg {
        Msg(DynamicMessage::new(
            self.message(&format!("modal.client.{name}")),
        ))
    }
}

/// Refuses a message holding a field number its official type does not define, at any
/// depth (an unknown field decodes silently otherwise).
fn unknown_fields(message: &DynamicMessage) -> Result<(), String> {
    if let Some(field) = message.unknown_fields().next() {
        return Err(format!(
            "{} has no field number {} in api.proto",
            message.descriptor().full_name(),
            field.number()
        ));
    }
    for (_, value) in message.fields() {
        let nested: Vec<&DynamicMessage> = match value {
            Value::Message(inner) => vec![inner],
            Value::List(items) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Message(inner) => Some(inner),
                    _ => None,
                })
                .collect(),
            Value::Map(entries) => entries
                .values()
                .filter_map(|item| match item {
                    Value::Message(inner) => Some(inner),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for inner in nested {
            unknown_fields(inner)?;
        }
    }
    Ok(())
}

/// A message of an official type, read and written by official field name. Naming a
/// field api.proto does not have, or setting a value of the wrong kind, panics: that
/// is a bug of the fake, not of the provider.
#[derive(Clone, Debug)]
pub struct Msg(pub DynamicMessage);

impl Msg {
    fn field(&self, name: &str) -> Value {
        self.0
            .get_field_by_name(name)
            .unwrap_or_else(|| {
                panic!(
                    "api.proto's {} has no field {name}",
                    self.0.descriptor().full_name()
                )
            })
            .into_owned()
    }

    /// Whether an `optional` (or message) field was sent.
    pub fn has(&self, name: &str) -> bool {
        let field = self
            .0
            .descriptor()
            .get_field_by_name(name)
            .unwrap_or_else(|| panic!("no field {name}"));
        self.0.has_field(&field)
    }

    pub fn str(&self, name: &str) -> String {
        self.field(name).as_str().unwrap_or_default().to_string()
    }

    /// An integer field of any width or sign, or an enum, as an `i64`.
    pub fn int(&self, name: &str) -> i64 {
        match self.field(name) {
            Value::I32(value) | Value::EnumNumber(value) => i64::from(value),
            Value::I64(value) => value,
            Value::U32(value) => i64::from(value),
            Value::U64(value) => value as i64,
            other => panic!("{name} is not an integer: {other:?}"),
        }
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.field(name) {
            Value::F32(value) => f64::from(value),
            Value::F64(value) => value,
            other => panic!("{name} is not a floating-point number: {other:?}"),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        self.field(name).as_bool().unwrap_or_default()
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        self.field(name)
            .as_bytes()
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default()
    }

    /// A message field, `None` when it was not sent.
    pub fn message(&self, name: &str) -> Option<Msg> {
        self.has(name).then(|| match self.field(name) {
            Value::Message(inner) => Msg(inner),
            other => panic!("{name} is not a message: {other:?}"),
        })
    }

    pub fn messages(&self, name: &str) -> Vec<Msg> {
        self.list(name)
            .into_iter()
            .filter_map(|value| match value {
                Value::Message(inner) => Some(Msg(inner)),
                _ => None,
            })
            .collect()
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.list(name)
            .iter()
            .filter_map(|value| value.as_str().map(String::from))
            .collect()
    }

    fn list(&self, name: &str) -> Vec<Value> {
        match self.field(name) {
            Value::List(items) => items,
            other => panic!("{name} is not repeated: {other:?}"),
        }
    }

    /// A `map<string, string>` field.
    pub fn string_map(&self, name: &str) -> BTreeMap<String, String> {
        match self.field(name) {
            Value::Map(entries) => entries
                .into_iter()
                .filter_map(|(key, value)| {
                    Some((key.as_str()?.to_string(), value.as_str()?.to_string()))
                })
                .collect(),
            other => panic!("{name} is not a map: {other:?}"),
        }
    }

    fn descriptor_of(&self, name: &str) -> prost_reflect::FieldDescriptor {
        self.0
            .descriptor()
            .get_field_by_name(name)
            .unwrap_or_else(|| {
                panic!(
                    "api.proto's {} has no field {name}",
                    self.0.descriptor().full_name()
                )
            })
    }

    /// Sets a field (builder style), checking the value against its official kind.
    pub fn set(mut self, name: &str, value: Value) -> Msg {
        let field = self.descriptor_of(name);
        if let Err(error) = self.0.try_set_field(&field, value) {
            panic!("{name}: {error}");
        }
        self
    }

    pub fn set_str(self, name: &str, value: impl Into<String>) -> Msg {
        self.set(name, Value::String(value.into()))
    }

    /// Sets an integer or enum field in the width and sign api.proto gives it.
    pub fn set_int(self, name: &str, value: i64) -> Msg {
        let value = match self.descriptor_of(name).kind() {
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(value as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(value),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(value as u32),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(value as u64),
            Kind::Enum(_) => Value::EnumNumber(value as i32),
            other => panic!("{name} is not an integer in api.proto but {other:?}"),
        };
        self.set(name, value)
    }

    pub fn set_float(self, name: &str, value: f64) -> Msg {
        let value = match self.descriptor_of(name).kind() {
            Kind::Float => Value::F32(value as f32),
            Kind::Double => Value::F64(value),
            other => panic!("{name} is not a floating-point number in api.proto but {other:?}"),
        };
        self.set(name, value)
    }

    pub fn set_bool(self, name: &str, value: bool) -> Msg {
        self.set(name, Value::Bool(value))
    }

    pub fn set_bytes(self, name: &str, value: Vec<u8>) -> Msg {
        self.set(name, Value::Bytes(value.into()))
    }

    /// Sets a repeated message field.
    pub fn set_messages(self, name: &str, items: Vec<Msg>) -> Msg {
        let list = items
            .into_iter()
            .map(|item| Value::Message(item.0))
            .collect();
        self.set(name, Value::List(list))
    }

    /// Sets a message field.
    pub fn set_message(self, name: &str, item: Msg) -> Msg {
        self.set(name, Value::Message(item.0))
    }

    pub fn encode(&self) -> Vec<u8> {
        self.0.encode_to_vec()
    }
}
