//! Protobuf schemas: `.proto` text parsed into a small syntax tree (declaration order, types as
//! written), compiled with its imports to check and resolve it, and re-printed in Confluent's
//! layout (the canonical text).
//!
//! Imports resolve only through the schema's references (an import path is a reference name), the
//! bundled `google/protobuf/*` well-known types and Confluent's `confluent/meta.proto` and
//! `confluent/type/decimal.proto`. Nothing is read from disk.
//!
//! Layout of the canonical text: `syntax`, `package`, a blank line and the imports, a blank line
//! and the file options, a blank line and the messages then the enums (each in declaration order),
//! extensions, services. Inside a message: reserved ranges, options, fields, oneofs, nested
//! messages then enums, each group after a blank line; two-space indentation; comments dropped.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, Value};
use prost_types::uninterpreted_option::NamePart;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto, UninterpretedOption,
};
use protox::file::{File, FileResolver, GoogleFileResolver};

use crate::references::Resolved;
use crate::{ParseOptions, SchemaError, SchemaReference};

/// The file name the schema itself gets when compiled.
pub(crate) const MAIN_FILE: &str = "default";
/// Highest field number; `reserved 10 to max` ends here.
const MAX_TAG: i32 = 536_870_911;

const CONFLUENT_META: &str = r#"syntax = "proto3";
package confluent;
import "google/protobuf/descriptor.proto";
option java_package = "io.confluent.protobuf";
option java_outer_classname = "MetaProto";
message Meta {
  string doc = 1;
  map<string, string> params = 2;
  repeated string tags = 3;
}
extend google.protobuf.FileOptions { Meta file_meta = 1088; }
extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }
"#;

const CONFLUENT_DECIMAL: &str = r#"syntax = "proto3";
package confluent.type;
option java_package = "io.confluent.protobuf.type";
option java_outer_classname = "DecimalProto";
message Decimal {
  bytes value = 1;
  uint32 precision = 2;
  int32 scale = 3;
}
"#;

fn invalid(message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid(message.into())
}

/// A resolved field type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldType {
    Scalar(&'static str),
    Enum(String),
    Message(String),
    Map(Box<FieldType>, Box<FieldType>),
}

#[derive(Debug, Clone)]
pub(crate) struct FieldAst {
    pub name: String,
    pub number: i32,
    /// The label as written (`None` for proto3 fields without one, oneof members and maps).
    pub label: Option<&'static str>,
    /// The type as written (`map<K, V>` for maps).
    pub written_type: String,
    pub ty: FieldType,
    options: Vec<String>,
    default: Option<String>,
    json_name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct OneofAst {
    pub name: String,
    pub fields: Vec<FieldAst>,
    options: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct EnumAst {
    pub name: String,
    pub values: Vec<(String, i32, Vec<String>)>,
    options: Vec<String>,
    reserved: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MessageAst {
    pub name: String,
    pub full_name: String,
    pub fields: Vec<FieldAst>,
    pub oneofs: Vec<OneofAst>,
    pub messages: Vec<MessageAst>,
    pub enums: Vec<EnumAst>,
    options: Vec<String>,
    reserved: Vec<String>,
    extensions: Vec<String>,
    extends: Vec<(String, Vec<FieldAst>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct FileAst {
    syntax: Option<String>,
    pub package: Option<String>,
    imports: Vec<String>,
    public_imports: Vec<String>,
    options: Vec<String>,
    pub messages: Vec<MessageAst>,
    pub enums: Vec<EnumAst>,
    extends: Vec<(String, Vec<FieldAst>)>,
    services: Vec<String>,
}

/// What a full type name refers to, for the compatibility diff.
#[derive(Debug, Clone)]
pub(crate) enum TypeInfo {
    Message { ast: Box<MessageAst>, package: String, reference: Option<(String, i32)> },
    Enum,
}

#[derive(Debug)]
pub(crate) struct ProtoModel {
    pub file: FileAst,
    /// Every message and enum of the schema and its imports, by full name.
    pub types: HashMap<String, TypeInfo>,
    canonical: String,
    ignore_extensions: String,
    serialized: Vec<u8>,
    /// The compiled schema and its imports, for encoding and decoding messages.
    pub pool: DescriptorPool,
}

struct Sources {
    files: HashMap<String, String>,
    google: GoogleFileResolver,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if let Some(source) = self.files.get(name) {
            return File::from_source(name, source);
        }
        self.google.open_file(name)
    }
}

/// Rejects brace nesting deeper than `limit` (strings and comments skipped) before parsing.
fn braces_exceed(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'<' | b'[' | b'(' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b'>' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

impl ProtoModel {
    /// Parses `.proto` text or, when the text is not `.proto`, the base64 encoding of a serialized
    /// `FileDescriptorProto` (what Confluent's serializers register). A descriptor is rendered to
    /// `.proto` text first, so both forms of one schema get the same canonical text. Referenced
    /// schemas may be in either form too.
    pub fn parse(
        text: &str,
        references: &[SchemaReference],
        resolved: &[Resolved],
        options: &ParseOptions,
    ) -> Result<ProtoModel, SchemaError> {
        let mut files: HashMap<String, String> = HashMap::new();
        files.insert("confluent/meta.proto".into(), CONFLUENT_META.into());
        files.insert("confluent/type/decimal.proto".into(), CONFLUENT_DECIMAL.into());
        // Dependencies come first, so a referenced descriptor's own imports are already known here.
        let mut dep_sources: Vec<(String, String)> = Vec::with_capacity(resolved.len());
        for r in resolved {
            let source = as_proto_text(&r.source.schema, &files, options)?;
            if braces_exceed(&source, options.max_depth) {
                return Err(SchemaError::TooDeep(options.max_depth));
            }
            files.insert(r.name.clone(), source.clone());
            dep_sources.push((r.name.clone(), source));
        }
        let text = as_proto_text(text, &files, options)?;
        let text = text.as_str();
        if braces_exceed(text, options.max_depth) {
            return Err(SchemaError::TooDeep(options.max_depth));
        }
        let parsed = protox_parse::parse(MAIN_FILE, text).map_err(|e| invalid(format!("{e}")))?;
        for dep in &parsed.dependency {
            if !files.contains_key(dep) && !dep.starts_with("google/protobuf/") {
                return Err(SchemaError::UnknownReference(format!("import '{dep}' is not among the references")));
            }
        }
        files.insert(MAIN_FILE.into(), text.into());
        let sources = Sources { files, google: GoogleFileResolver::new() };
        let mut compiler = protox::Compiler::with_file_resolver(sources);
        compiler.include_imports(true);
        compiler.open_file(MAIN_FILE).map_err(|e| invalid(format!("{e}")))?;
        let pool = compiler.descriptor_pool();
        let main = compiler.file_descriptor_set().file.into_iter().find(|f| f.name() == MAIN_FILE);
        let mut compiled = main.ok_or_else(|| invalid("the schema did not compile"))?;
        compiled.source_code_info = None;
        let serialized = compiled.encode_to_vec();

        let syntax = detect_syntax(text, &parsed);
        let file = build_file(&parsed, syntax, &pool);
        let mut types = HashMap::new();
        collect_types(&file, None, &mut types);
        for (r, (_, source)) in resolved.iter().zip(&dep_sources) {
            if let Ok(dep) = protox_parse::parse(&r.name, source) {
                let syntax = detect_syntax(source, &dep);
                let dep_file = build_file(&dep, syntax, &pool);
                let reference = references
                    .iter()
                    .find(|x| x.name == r.name)
                    .map(|x| (x.subject.clone(), x.version))
                    .or_else(|| Some((r.reference.subject.clone(), r.reference.version)));
                collect_types(&dep_file, reference, &mut types);
            }
        }
        for message in pool.all_messages() {
            types.entry(message.full_name().to_string()).or_insert_with(|| TypeInfo::Message {
                ast: Box::new(MessageAst {
                    name: message.name().to_string(),
                    full_name: message.full_name().to_string(),
                    fields: Vec::new(),
                    oneofs: Vec::new(),
                    messages: Vec::new(),
                    enums: Vec::new(),
                    options: Vec::new(),
                    reserved: Vec::new(),
                    extensions: Vec::new(),
                    extends: Vec::new(),
                }),
                package: message.parent_file().package_name().to_string(),
                reference: Some((message.parent_file().name().to_string(), 0)),
            });
        }
        for e in pool.all_enums() {
            types.entry(e.full_name().to_string()).or_insert(TypeInfo::Enum);
        }
        let canonical = print_file(&file, options.normalize, false);
        let ignore_extensions = print_file(&file, options.normalize, true);
        Ok(ProtoModel { file, types, canonical, ignore_extensions, serialized, pool })
    }

    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// Full name of the first message (or, without messages, the first enum).
    pub fn name(&self) -> Option<String> {
        let first = self
            .file
            .messages
            .first()
            .map(|m| m.name.clone())
            .or_else(|| self.file.enums.first().map(|e| e.name.clone()))?;
        Some(match self.file.package.as_deref() {
            Some(p) if !p.is_empty() => format!("{p}.{first}"),
            _ => first,
        })
    }

    /// Base64 of the compiled `FileDescriptorProto` (`format=serialized`).
    pub fn serialized(&self) -> Result<String, SchemaError> {
        Ok(base64::engine::general_purpose::STANDARD.encode(&self.serialized))
    }

    /// The canonical text without custom (parenthesized) options and extensions.
    pub fn ignore_extensions(&self) -> String {
        self.ignore_extensions.clone()
    }
}

fn detect_syntax(text: &str, parsed: &FileDescriptorProto) -> Option<String> {
    match parsed.syntax.as_deref() {
        Some(s) => Some(s.to_string()),
        None => {
            let declared =
                regex::Regex::new(r#"(?m)^\s*syntax\s*=\s*["']proto2["']"#).is_ok_and(|re| re.is_match(text));
            declared.then(|| "proto2".to_string())
        }
    }
}

fn collect_types(file: &FileAst, reference: Option<(String, i32)>, out: &mut HashMap<String, TypeInfo>) {
    let package = file.package.clone().unwrap_or_default();
    fn walk(m: &MessageAst, package: &str, reference: &Option<(String, i32)>, out: &mut HashMap<String, TypeInfo>) {
        out.insert(
            m.full_name.clone(),
            TypeInfo::Message { ast: Box::new(m.clone()), package: package.to_string(), reference: reference.clone() },
        );
        for e in &m.enums {
            out.insert(format!("{}.{}", m.full_name, e.name), TypeInfo::Enum);
        }
        for n in &m.messages {
            walk(n, package, reference, out);
        }
    }
    for m in &file.messages {
        walk(m, &package, &reference, out);
    }
    for e in &file.enums {
        let full = if package.is_empty() { e.name.clone() } else { format!("{package}.{}", e.name) };
        out.insert(full, TypeInfo::Enum);
    }
}

// ----- serialized descriptors -----

/// `text` when it is `.proto` text, else the `.proto` text rendered from `text` read as a base64
/// serialized `FileDescriptorProto` whose imports are among `files` or the well-known types.
fn as_proto_text(text: &str, files: &HashMap<String, String>, options: &ParseOptions) -> Result<String, SchemaError> {
    if text.len() > options.max_schema_bytes {
        return Err(SchemaError::TooLarge(options.max_schema_bytes));
    }
    if braces_exceed(text, options.max_depth) {
        return Err(SchemaError::TooDeep(options.max_depth));
    }
    let text_error = match protox_parse::parse(MAIN_FILE, text) {
        Ok(_) => return Ok(text.to_string()),
        Err(e) => e,
    };
    let base64_like = text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b) || b.is_ascii_whitespace());
    match descriptor_to_text(text, files) {
        Ok(rendered) => Ok(rendered),
        Err(e) if base64_like => Err(e),
        Err(_) => Err(invalid(format!("{text_error}"))),
    }
}

fn descriptor_to_text(encoded: &str, files: &HashMap<String, String>) -> Result<String, SchemaError> {
    let compact: Vec<u8> = encoded.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(&compact).map_err(|e| {
        invalid(format!("the schema is neither .proto text nor a base64-encoded FileDescriptorProto ({e})"))
    })?;
    let proto = FileDescriptorProto::decode(bytes.as_slice())
        .map_err(|e| invalid(format!("the base64 schema is not a serialized FileDescriptorProto: {e}")))?;
    for dep in &proto.dependency {
        if !files.contains_key(dep) && !dep.starts_with("google/protobuf/") {
            return Err(SchemaError::UnknownReference(format!("import '{dep}' is not among the references")));
        }
    }
    let sources = Sources { files: files.clone(), google: GoogleFileResolver::new() };
    let mut compiler = protox::Compiler::with_file_resolver(sources);
    compiler.include_imports(true);
    compiler.open_files(&proto.dependency).map_err(|e| invalid(format!("{e}")))?;
    let mut pool = compiler.descriptor_pool();
    // Decoding the whole descriptor with the options' extensions known proves every options
    // message in it decodes, which reading the options back later relies on.
    let descriptor_type = pool
        .get_message_by_name("google.protobuf.FileDescriptorProto")
        .or_else(|| DescriptorPool::global().get_message_by_name("google.protobuf.FileDescriptorProto"))
        .ok_or_else(|| invalid("the descriptor types are unavailable"))?;
    DynamicMessage::decode(descriptor_type, bytes.as_slice())
        .map_err(|e| invalid(format!("the base64 schema is not a serialized FileDescriptorProto: {e}")))?;
    pool.decode_file_descriptor_proto(bytes.as_slice())
        .map_err(|e| invalid(format!("the FileDescriptorProto is not a valid schema: {e}")))?;
    let file =
        pool.get_file_by_name(proto.name()).ok_or_else(|| invalid("the FileDescriptorProto is not a valid schema"))?;
    let written = Rewriter { pool: &pool, package: file.package_name().to_string() }.file(&file);
    let syntax = written.syntax.clone().filter(|s| !s.is_empty());
    Ok(print_file(&build_file(&written, syntax, &pool), false, false))
}

/// Default JSON name of a field, as compilers derive it (`foo_bar` → `fooBar`).
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn plain_option(name: &str, value: OptionValue) -> UninterpretedOption {
    let mut o = UninterpretedOption {
        name: vec![NamePart { name_part: name.to_string(), is_extension: false }],
        ..UninterpretedOption::default()
    };
    match value {
        OptionValue::Identifier(v) => o.identifier_value = Some(v),
        OptionValue::Positive(v) => o.positive_int_value = Some(v),
        OptionValue::Negative(v) => o.negative_int_value = Some(v),
        OptionValue::Double(v) => o.double_value = Some(v),
        OptionValue::Bytes(v) => o.string_value = Some(v),
        OptionValue::Aggregate(v) => o.aggregate_value = Some(v),
    }
    o
}

enum OptionValue {
    Identifier(String),
    Positive(u64),
    Negative(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Aggregate(String),
}

fn option_values(value: &Value, kind: &Kind) -> Vec<OptionValue> {
    let one = match value {
        Value::Bool(b) => OptionValue::Identifier(b.to_string()),
        Value::I32(v) => signed(i64::from(*v)),
        Value::I64(v) => signed(*v),
        Value::U32(v) => OptionValue::Positive(u64::from(*v)),
        Value::U64(v) => OptionValue::Positive(*v),
        Value::F32(v) => double(f64::from(*v)),
        Value::F64(v) => double(*v),
        Value::String(v) => OptionValue::Bytes(v.clone().into_bytes()),
        Value::Bytes(v) => OptionValue::Bytes(v.to_vec()),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(v) => OptionValue::Identifier(v.name().to_string()),
            None => signed(i64::from(*n)),
        },
        Value::Message(m) => OptionValue::Aggregate(aggregate(m)),
        Value::List(items) => return items.iter().flat_map(|v| option_values(v, kind)).collect(),
        Value::Map(_) => return Vec::new(),
    };
    vec![one]
}

fn signed(v: i64) -> OptionValue {
    match u64::try_from(v) {
        Ok(p) => OptionValue::Positive(p),
        Err(_) => OptionValue::Negative(v),
    }
}

fn double(v: f64) -> OptionValue {
    if v.is_finite() { OptionValue::Double(v) } else { OptionValue::Identifier(v.to_string().to_lowercase()) }
}

/// The text-format body of a message-valued option (`doc: "x" tags: "a"`).
fn aggregate(m: &DynamicMessage) -> String {
    let mut parts = Vec::new();
    let fields = m.fields().map(|(f, v)| (f.name().to_string(), f.kind(), v));
    let extensions = m.extensions().map(|(e, v)| (format!("[{}]", e.full_name()), e.kind(), v));
    for (name, kind, value) in fields.chain(extensions) {
        for v in option_values(value, &kind) {
            let text = match v {
                OptionValue::Aggregate(body) => format!("{name} {{ {body} }}"),
                other => format!("{name}: {}", option_value(&plain_option("", other))),
            };
            parts.push(text);
        }
    }
    parts.join(" ")
}

/// Options as the text parser leaves them: uninterpreted `name = value` pairs.
fn uninterpreted(options: &DynamicMessage, skip: &[&str]) -> Vec<UninterpretedOption> {
    let mut out = Vec::new();
    for (field, value) in options.fields() {
        if field.name() == "uninterpreted_option" || skip.contains(&field.name()) {
            continue;
        }
        out.extend(option_values(value, &field.kind()).into_iter().map(|v| plain_option(field.name(), v)));
    }
    for (extension, value) in options.extensions() {
        for v in option_values(value, &extension.kind()) {
            let mut o = plain_option(extension.full_name(), v);
            if let Some(part) = o.name.first_mut() {
                part.is_extension = true;
            }
            out.push(o);
        }
    }
    out
}

/// `name` in `scope` (a package or a message's full name, possibly empty).
fn scoped(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_string() } else { format!("{scope}.{name}") }
}

/// Turns a compiled descriptor back into what the text parser produces for the same file: options
/// uninterpreted and type names as short as they resolve from where they are used.
struct Rewriter<'a> {
    pool: &'a DescriptorPool,
    package: String,
}

impl Rewriter<'_> {
    fn file(&self, file: &prost_reflect::FileDescriptor) -> FileDescriptorProto {
        let mut proto = file.file_descriptor_proto().clone();
        proto.source_code_info = None;
        proto.options = Some(prost_types::FileOptions {
            uninterpreted_option: uninterpreted(&file.options(), &[]),
            ..Default::default()
        });
        let package = self.package.clone();
        self.members(&mut proto.message_type, &mut proto.enum_type, &mut proto.extension, &package);
        for s in &mut proto.service {
            let full = scoped(&package, s.name());
            let service = self.pool.get_service_by_name(&full);
            s.options = Some(prost_types::ServiceOptions {
                uninterpreted_option: service.as_ref().map(|x| uninterpreted(&x.options(), &[])).unwrap_or_default(),
                ..Default::default()
            });
            for m in &mut s.method {
                let method = service.as_ref().and_then(|x| x.methods().find(|y| y.name() == m.name()));
                m.options = Some(prost_types::MethodOptions {
                    uninterpreted_option: method.map(|x| uninterpreted(&x.options(), &[])).unwrap_or_default(),
                    ..Default::default()
                });
                m.input_type = m.input_type.as_deref().map(|t| self.relative(t, &full));
                m.output_type = m.output_type.as_deref().map(|t| self.relative(t, &full));
            }
        }
        proto
    }

    fn message(&self, m: &mut DescriptorProto, full: &str) {
        let descriptor = self.pool.get_message_by_name(full);
        let map_entry = m.options.as_ref().and_then(|o| o.map_entry);
        m.options = Some(prost_types::MessageOptions {
            map_entry,
            uninterpreted_option: descriptor
                .as_ref()
                .map(|d| uninterpreted(&d.options(), &["map_entry"]))
                .unwrap_or_default(),
            ..Default::default()
        });
        for f in &mut m.field {
            let field = descriptor.as_ref().and_then(|d| d.get_field_by_name(f.name()));
            self.field(f, field.map(|x| x.options()), full);
        }
        for (i, o) in m.oneof_decl.iter_mut().enumerate() {
            let oneof = descriptor.as_ref().and_then(|d| d.oneofs().nth(i));
            o.options = Some(prost_types::OneofOptions {
                uninterpreted_option: oneof.map(|x| uninterpreted(&x.options(), &[])).unwrap_or_default(),
            });
        }
        self.members(&mut m.nested_type, &mut m.enum_type, &mut m.extension, full);
    }

    /// The messages, enums and extensions declared in `scope` (a package or a message's full name).
    fn members(
        &self,
        messages: &mut [DescriptorProto],
        enums: &mut [EnumDescriptorProto],
        extensions: &mut [FieldDescriptorProto],
        scope: &str,
    ) {
        for m in messages {
            let full = scoped(scope, m.name());
            self.message(m, &full);
        }
        for e in enums {
            let full = scoped(scope, e.name());
            self.enumeration(e, &full);
        }
        for f in extensions {
            self.extension(f, scope);
        }
    }

    fn extension(&self, f: &mut FieldDescriptorProto, scope: &str) {
        let full = scoped(scope, f.name());
        let options = self.pool.get_extension_by_name(&full).map(|x| x.options());
        self.field(f, options, scope);
        f.extendee = f.extendee.as_deref().map(|t| self.relative(t, scope));
    }

    fn field(&self, f: &mut FieldDescriptorProto, options: Option<DynamicMessage>, scope: &str) {
        f.options = options
            .map(|o| prost_types::FieldOptions { uninterpreted_option: uninterpreted(&o, &[]), ..Default::default() });
        if f.json_name.as_deref() == Some(default_json_name(f.name()).as_str()) {
            f.json_name = None;
        }
        f.type_name = f.type_name.as_deref().map(|t| self.relative(t, scope));
    }

    fn enumeration(&self, e: &mut EnumDescriptorProto, full: &str) {
        let descriptor = self.pool.get_enum_by_name(full);
        e.options = Some(prost_types::EnumOptions {
            uninterpreted_option: descriptor.as_ref().map(|d| uninterpreted(&d.options(), &[])).unwrap_or_default(),
            ..Default::default()
        });
        for v in &mut e.value {
            let value = descriptor.as_ref().and_then(|d| d.get_value_by_name(v.name()));
            v.options = Some(prost_types::EnumValueOptions {
                uninterpreted_option: value.map(|x| uninterpreted(&x.options(), &[])).unwrap_or_default(),
                ..Default::default()
            });
        }
    }

    /// The shortest trailing part of `full` that resolves to it from `scope` by the language's
    /// scoping rules (innermost scope first, on the first name component).
    fn relative(&self, full: &str, scope: &str) -> String {
        let Some(target) = full.strip_prefix('.') else {
            return full.to_string();
        };
        let parts: Vec<&str> = target.split('.').collect();
        for k in 1..=parts.len() {
            let candidate = parts[parts.len() - k..].join(".");
            if self.resolve(&candidate, scope).as_deref() == Some(target) {
                return candidate;
            }
        }
        full.to_string()
    }

    fn resolve(&self, candidate: &str, scope: &str) -> Option<String> {
        let first = candidate.split('.').next().unwrap_or(candidate);
        let mut scope = Some(scope);
        while let Some(s) = scope {
            let (head, full) = if s.is_empty() {
                (first.to_string(), candidate.to_string())
            } else {
                (format!("{s}.{first}"), format!("{s}.{candidate}"))
            };
            if self.exists(&head) {
                return Some(full);
            }
            scope = if s.is_empty() { None } else { Some(s.rsplit_once('.').map_or("", |(p, _)| p)) };
        }
        None
    }

    fn exists(&self, name: &str) -> bool {
        self.pool.get_message_by_name(name).is_some()
            || self.pool.get_enum_by_name(name).is_some()
            || self.pool.get_service_by_name(name).is_some()
            || self.pool.get_extension_by_name(name).is_some()
            || self.pool.files().any(|f| {
                let p = f.package_name();
                p == name || p.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

// ----- building the tree from the parser's descriptor -----

fn scalar_name(t: prost_types::field_descriptor_proto::Type) -> &'static str {
    use prost_types::field_descriptor_proto::Type;
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        _ => "group",
    }
}

fn kind_type(kind: &Kind) -> FieldType {
    match kind {
        Kind::Message(m) => FieldType::Message(m.full_name().to_string()),
        Kind::Enum(e) => FieldType::Enum(e.full_name().to_string()),
        Kind::Double => FieldType::Scalar("double"),
        Kind::Float => FieldType::Scalar("float"),
        Kind::Int32 => FieldType::Scalar("int32"),
        Kind::Int64 => FieldType::Scalar("int64"),
        Kind::Uint32 => FieldType::Scalar("uint32"),
        Kind::Uint64 => FieldType::Scalar("uint64"),
        Kind::Sint32 => FieldType::Scalar("sint32"),
        Kind::Sint64 => FieldType::Scalar("sint64"),
        Kind::Fixed32 => FieldType::Scalar("fixed32"),
        Kind::Fixed64 => FieldType::Scalar("fixed64"),
        Kind::Sfixed32 => FieldType::Scalar("sfixed32"),
        Kind::Sfixed64 => FieldType::Scalar("sfixed64"),
        Kind::Bool => FieldType::Scalar("bool"),
        Kind::String => FieldType::Scalar("string"),
        Kind::Bytes => FieldType::Scalar("bytes"),
    }
}

fn option_name(o: &UninterpretedOption) -> String {
    let mut s = String::new();
    for (i, part) in o.name.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if part.is_extension {
            let _ = write!(s, "({})", part.name_part);
        } else {
            s.push_str(&part.name_part);
        }
    }
    s
}

fn escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn option_value(o: &UninterpretedOption) -> String {
    if let Some(id) = &o.identifier_value {
        id.clone()
    } else if let Some(v) = o.positive_int_value {
        v.to_string()
    } else if let Some(v) = o.negative_int_value {
        v.to_string()
    } else if let Some(v) = o.double_value {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { v.to_string() }
    } else if let Some(bytes) = &o.string_value {
        format!("\"{}\"", escape(&String::from_utf8_lossy(bytes)))
    } else if let Some(agg) = &o.aggregate_value {
        format!("{{\n  {}\n}}", agg.trim())
    } else {
        String::new()
    }
}

/// `name = value` of each option, as written.
fn options_of(list: &[UninterpretedOption]) -> Vec<String> {
    list.iter().map(|o| format!("{} = {}", option_name(o), option_value(o))).collect()
}

fn reserved_of(ranges: &[(i32, i32)], names: &[String], end_exclusive: bool) -> Vec<String> {
    let mut out = Vec::new();
    let numbers: Vec<String> = ranges
        .iter()
        .map(|&(start, end)| {
            let last = if end_exclusive { end - 1 } else { end };
            if start == last {
                start.to_string()
            } else if last >= MAX_TAG {
                format!("{start} to max")
            } else {
                format!("{start} to {last}")
            }
        })
        .collect();
    if !numbers.is_empty() {
        out.push(numbers.join(", "));
    }
    if !names.is_empty() {
        out.push(names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "));
    }
    out
}

struct TreeBuilder<'a> {
    pool: &'a DescriptorPool,
    proto3: bool,
}

impl TreeBuilder<'_> {
    fn field(
        &self,
        f: &FieldDescriptorProto,
        owner: &str,
        entries: &HashMap<String, DescriptorProto>,
        in_oneof: bool,
    ) -> FieldAst {
        use prost_types::field_descriptor_proto::Label;
        let resolved = self.pool.get_message_by_name(owner).and_then(|m| m.get_field(u32::try_from(f.number()).ok()?));
        let written = f.type_name.clone();
        let map_entry = written.as_deref().and_then(|t| entries.get(t)).filter(|_| f.label() == Label::Repeated);
        let (written_type, ty) = match (map_entry, &resolved) {
            (Some(entry), _) => {
                let part = |n: i32| -> (String, FieldType) {
                    let field = entry.field.iter().find(|x| x.number() == n);
                    let written = field
                        .map(|x| x.type_name.clone().unwrap_or_else(|| scalar_name(x.r#type()).to_string()))
                        .unwrap_or_default();
                    let ty = resolved
                        .as_ref()
                        .and_then(|r| match r.kind() {
                            Kind::Message(m) => m.get_field(n as u32).map(|x| kind_type(&x.kind())),
                            _ => None,
                        })
                        .unwrap_or(FieldType::Scalar("string"));
                    (written, ty)
                };
                let (kw, kt) = part(1);
                let (vw, vt) = part(2);
                (format!("map<{kw}, {vw}>"), FieldType::Map(Box::new(kt), Box::new(vt)))
            }
            _ => {
                let written_type = written.clone().unwrap_or_else(|| scalar_name(f.r#type()).to_string());
                let ty = match &resolved {
                    Some(r) => kind_type(&r.kind()),
                    None => FieldType::Scalar(scalar_name(f.r#type())),
                };
                (written_type, ty)
            }
        };
        let label = if map_entry.is_some() || (in_oneof && f.proto3_optional != Some(true)) {
            None
        } else {
            match f.label() {
                Label::Repeated => Some("repeated"),
                Label::Required => Some("required"),
                Label::Optional if !self.proto3 || f.proto3_optional == Some(true) => Some("optional"),
                Label::Optional => None,
            }
        };
        FieldAst {
            name: f.name().to_string(),
            number: f.number(),
            label,
            written_type,
            ty,
            options: f.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default(),
            default: f.default_value.clone(),
            json_name: f.json_name.clone(),
        }
    }

    fn enumeration(&self, e: &EnumDescriptorProto) -> EnumAst {
        let ranges: Vec<(i32, i32)> = e.reserved_range.iter().map(|r| (r.start(), r.end())).collect();
        EnumAst {
            name: e.name().to_string(),
            values: e
                .value
                .iter()
                .map(|v| {
                    (
                        v.name().to_string(),
                        v.number(),
                        v.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default(),
                    )
                })
                .collect(),
            options: e.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default(),
            reserved: reserved_of(&ranges, &e.reserved_name, false),
        }
    }

    fn message(&self, m: &DescriptorProto, full_name: String) -> MessageAst {
        let entries: HashMap<String, DescriptorProto> = m
            .nested_type
            .iter()
            .filter(|n| n.options.as_ref().is_some_and(|o| o.map_entry()))
            .map(|n| (n.name().to_string(), n.clone()))
            .collect();
        let mut fields = Vec::new();
        let mut oneofs: Vec<OneofAst> = m
            .oneof_decl
            .iter()
            .map(|o| OneofAst {
                name: o.name().to_string(),
                fields: Vec::new(),
                options: o.options.as_ref().map(|x| options_of(&x.uninterpreted_option)).unwrap_or_default(),
            })
            .collect();
        let mut synthetic = vec![false; oneofs.len()];
        for f in &m.field {
            match f.oneof_index {
                Some(i) if f.proto3_optional == Some(true) => {
                    if let Some(s) = synthetic.get_mut(i as usize) {
                        *s = true;
                    }
                    fields.push(self.field(f, &full_name, &entries, false));
                }
                Some(i) => {
                    let field = self.field(f, &full_name, &entries, true);
                    if let Some(o) = oneofs.get_mut(i as usize) {
                        o.fields.push(field);
                    }
                }
                None => fields.push(self.field(f, &full_name, &entries, false)),
            }
        }
        let oneofs = oneofs.into_iter().zip(synthetic).filter(|(_, s)| !s).map(|(o, _)| o).collect();
        let messages = m
            .nested_type
            .iter()
            .filter(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()))
            .map(|n| self.message(n, format!("{full_name}.{}", n.name())))
            .collect();
        let ranges: Vec<(i32, i32)> = m.reserved_range.iter().map(|r| (r.start(), r.end())).collect();
        let ext_ranges: Vec<(i32, i32)> = m.extension_range.iter().map(|r| (r.start(), r.end())).collect();
        MessageAst {
            name: m.name().to_string(),
            fields,
            oneofs,
            messages,
            enums: m.enum_type.iter().map(|e| self.enumeration(e)).collect(),
            options: m.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default(),
            reserved: reserved_of(&ranges, &m.reserved_name, true),
            extensions: reserved_of(&ext_ranges, &[], true),
            extends: self.extends(&m.extension, &full_name),
            full_name,
        }
    }

    fn extends(&self, fields: &[FieldDescriptorProto], owner: &str) -> Vec<(String, Vec<FieldAst>)> {
        let mut out: Vec<(String, Vec<FieldAst>)> = Vec::new();
        let none = HashMap::new();
        for f in fields {
            let extendee = f.extendee().to_string();
            let field = self.field(f, owner, &none, false);
            match out.last_mut() {
                Some((e, list)) if *e == extendee => list.push(field),
                _ => out.push((extendee, vec![field])),
            }
        }
        out
    }
}

fn build_file(parsed: &FileDescriptorProto, syntax: Option<String>, pool: &DescriptorPool) -> FileAst {
    let builder = TreeBuilder { pool, proto3: syntax.as_deref() == Some("proto3") };
    let package = parsed.package.clone().filter(|p| !p.is_empty());
    let prefix = package.as_deref().map(|p| format!("{p}.")).unwrap_or_default();
    let public: Vec<String> =
        parsed.public_dependency.iter().filter_map(|&i| parsed.dependency.get(i as usize).cloned()).collect();
    let services = parsed
        .service
        .iter()
        .map(|s| {
            let mut text = format!("service {} {{", s.name());
            let options = s.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default();
            if !options.is_empty() {
                text.push('\n');
                for o in options {
                    let _ = writeln!(text, "  option {o};");
                }
            }
            if !s.method.is_empty() {
                text.push('\n');
                for m in &s.method {
                    let stream = |b: bool| if b { "stream " } else { "" };
                    let _ = write!(
                        text,
                        "  rpc {} ({}{}) returns ({}{})",
                        m.name(),
                        stream(m.client_streaming()),
                        m.input_type(),
                        stream(m.server_streaming()),
                        m.output_type()
                    );
                    let options = m.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default();
                    if options.is_empty() {
                        text.push_str(";\n");
                    } else {
                        text.push_str(" {\n");
                        for o in options {
                            let _ = writeln!(text, "    option {o};");
                        }
                        text.push_str("  };\n");
                    }
                }
            }
            text.push_str("}\n");
            text
        })
        .collect();
    FileAst {
        syntax,
        imports: parsed.dependency.iter().filter(|d| !public.contains(d)).cloned().collect(),
        public_imports: public,
        options: parsed.options.as_ref().map(|o| options_of(&o.uninterpreted_option)).unwrap_or_default(),
        messages: parsed.message_type.iter().map(|m| builder.message(m, format!("{prefix}{}", m.name()))).collect(),
        enums: parsed.enum_type.iter().map(|e| builder.enumeration(e)).collect(),
        extends: builder.extends(&parsed.extension, package.as_deref().unwrap_or("")),
        services,
        package,
    }
}

// ----- printing -----

fn indent(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

struct PrintOptions {
    normalize: bool,
    ignore_extensions: bool,
}

impl PrintOptions {
    fn filter(&self, options: &[String]) -> Vec<String> {
        let mut list: Vec<String> = options
            .iter()
            .filter(|o| !self.ignore_extensions || !o.starts_with('(') || o.starts_with("(confluent."))
            .cloned()
            .collect();
        if self.normalize {
            list.sort();
        }
        list
    }

    /// The bracketed option list of a field or enum value.
    fn bracket(&self, options: Vec<String>) -> String {
        match options.len() {
            0 => String::new(),
            1 => format!(" [{}]", options[0]),
            n => {
                let mut s = String::from(" [\n");
                for (i, o) in options.iter().enumerate() {
                    let _ = writeln!(s, "  {o}{}", if i + 1 < n { "," } else { "" });
                }
                s.push(']');
                s
            }
        }
    }

    fn type_name(&self, written: &str, ty: &FieldType) -> String {
        if !self.normalize {
            return written.to_string();
        }
        match ty {
            FieldType::Message(n) | FieldType::Enum(n) => format!(".{n}"),
            FieldType::Scalar(s) => (*s).to_string(),
            FieldType::Map(k, v) => format!("map<{}, {}>", self.type_name("", k), self.type_name("", v)),
        }
    }

    fn field(&self, f: &FieldAst) -> String {
        let mut s = String::new();
        if let Some(label) = f.label {
            s.push_str(label);
            s.push(' ');
        }
        let _ = write!(s, "{} {} = {}", self.type_name(&f.written_type, &f.ty), f.name, f.number);
        let mut options = f.options.clone();
        if let Some(d) = &f.default {
            let value = match &f.ty {
                FieldType::Scalar("string") => format!("\"{}\"", escape(d)),
                _ => d.clone(),
            };
            options.push(format!("default = {value}"));
        }
        if let Some(j) = &f.json_name {
            options.push(format!("json_name = \"{}\"", escape(j)));
        }
        s.push_str(&self.bracket(self.filter(&options)));
        s.push_str(";\n");
        s
    }

    fn enumeration(&self, e: &EnumAst) -> String {
        let mut s = format!("enum {} {{", e.name);
        if !e.reserved.is_empty() {
            s.push('\n');
            for r in &e.reserved {
                let _ = writeln!(s, "  reserved {r};");
            }
        }
        let options = self.filter(&e.options);
        if e.reserved.is_empty() && (!options.is_empty() || !e.values.is_empty()) {
            s.push('\n');
        }
        for o in options {
            let _ = writeln!(s, "  option {o};");
        }
        let mut values = e.values.clone();
        if self.normalize {
            values.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        }
        for (name, number, options) in &values {
            let _ = writeln!(s, "  {name} = {number}{};", self.bracket(self.filter(options)));
        }
        s.push_str("}\n");
        s
    }

    fn extend(&self, name: &str, fields: &[FieldAst]) -> String {
        let mut s = format!("extend {name} {{");
        if !fields.is_empty() {
            s.push('\n');
            let mut fields = fields.to_vec();
            if self.normalize {
                fields.sort_by_key(|f| f.number);
            }
            for f in &fields {
                indent(&mut s, &self.field(f));
            }
        }
        s.push_str("}\n");
        s
    }

    fn message(&self, m: &MessageAst) -> String {
        let mut s = format!("message {} {{", m.name);
        if !m.reserved.is_empty() {
            s.push('\n');
            for r in &m.reserved {
                let _ = writeln!(s, "  reserved {r};");
            }
        }
        let options = self.filter(&m.options);
        if !options.is_empty() {
            s.push('\n');
            for o in options {
                let _ = writeln!(s, "  option {o};");
            }
        }
        if !m.fields.is_empty() {
            s.push('\n');
            let mut fields = m.fields.clone();
            if self.normalize {
                fields.sort_by_key(|f| f.number);
            }
            for f in &fields {
                indent(&mut s, &self.field(f));
            }
        }
        let mut oneofs: Vec<OneofAst> = m.oneofs.clone();
        if self.normalize {
            oneofs.retain(|o| !o.fields.is_empty());
            for o in &mut oneofs {
                o.fields.sort_by_key(|f| f.number);
            }
            oneofs.sort_by_key(|o| o.fields.first().map(|f| f.number).unwrap_or(0));
        }
        if !oneofs.is_empty() {
            s.push('\n');
            for o in &oneofs {
                let mut text = format!("oneof {} {{", o.name);
                let options = self.filter(&o.options);
                if !options.is_empty() {
                    text.push('\n');
                    for opt in options {
                        let _ = writeln!(text, "  option {opt};");
                    }
                }
                if !o.fields.is_empty() {
                    text.push('\n');
                    for f in &o.fields {
                        indent(&mut text, &self.field(f));
                    }
                }
                text.push_str("}\n");
                indent(&mut s, &text);
            }
        }
        if !self.ignore_extensions && !m.extensions.is_empty() {
            s.push('\n');
            for e in &m.extensions {
                let _ = writeln!(s, "  extensions {e};");
            }
        }
        if !self.ignore_extensions && !m.extends.is_empty() {
            s.push('\n');
            for (name, fields) in &m.extends {
                indent(&mut s, &self.extend(name, fields));
            }
        }
        if !m.messages.is_empty() || !m.enums.is_empty() {
            s.push('\n');
            for n in &m.messages {
                indent(&mut s, &self.message(n));
            }
            for e in &m.enums {
                indent(&mut s, &self.enumeration(e));
            }
        }
        s.push_str("}\n");
        s
    }
}

fn print_file(file: &FileAst, normalize: bool, ignore_extensions: bool) -> String {
    let p = PrintOptions { normalize, ignore_extensions };
    let mut s = String::new();
    if let Some(syntax) = &file.syntax
        && (!normalize || syntax == "proto3")
    {
        let _ = writeln!(s, "syntax = \"{syntax}\";");
    }
    if let Some(package) = &file.package {
        let _ = writeln!(s, "package {package};");
    }
    if !file.imports.is_empty() || !file.public_imports.is_empty() {
        s.push('\n');
        let mut imports = file.imports.clone();
        let mut public = file.public_imports.clone();
        if normalize {
            imports.sort();
            imports.dedup();
            public.sort();
            public.dedup();
        }
        for i in imports {
            let _ = writeln!(s, "import \"{i}\";");
        }
        for i in public {
            let _ = writeln!(s, "import public \"{i}\";");
        }
    }
    let options = p.filter(&file.options);
    if !options.is_empty() {
        s.push('\n');
        for o in options {
            let _ = writeln!(s, "option {o};");
        }
    }
    if !file.messages.is_empty() || !file.enums.is_empty() {
        s.push('\n');
        for m in &file.messages {
            s.push_str(&p.message(m));
        }
        for e in &file.enums {
            s.push_str(&p.enumeration(e));
        }
    }
    if !ignore_extensions && !file.extends.is_empty() {
        s.push('\n');
        for (name, fields) in &file.extends {
            s.push_str(&p.extend(name, fields));
        }
    }
    if !file.services.is_empty() {
        s.push('\n');
        for svc in &file.services {
            s.push_str(svc);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProtoModel, SchemaError> {
        ProtoModel::parse(text, &[], &[], &ParseOptions::default())
    }

    #[test]
    fn reprints_in_confluent_layout() {
        let text = r#"
// comment
syntax = "proto3";
package com.acme;
import "google/protobuf/timestamp.proto";
option java_package = "com.acme.proto";
enum Status { UNKNOWN = 0; ACTIVE = 1 [deprecated = true]; }
message Order {
  reserved 5, 9 to 11;
  string id = 1;
  google.protobuf.Timestamp at = 2;
  map<string, int64> counts = 3;
  optional int32 qty = 4;
  oneof pay { string card = 6; string iban = 7; }
  message Line { repeated string sku = 1 [json_name = "SKU"]; }
}
"#;
        let m = parse(text).expect("valid");
        assert_eq!(
            m.canonical(),
            "syntax = \"proto3\";\npackage com.acme;\n\nimport \"google/protobuf/timestamp.proto\";\n\noption java_package = \"com.acme.proto\";\n\nmessage Order {\n  reserved 5, 9 to 11;\n\n  string id = 1;\n  google.protobuf.Timestamp at = 2;\n  map<string, int64> counts = 3;\n  optional int32 qty = 4;\n\n  oneof pay {\n    string card = 6;\n    string iban = 7;\n  }\n\n  message Line {\n    repeated string sku = 1 [json_name = \"SKU\"];\n  }\n}\nenum Status {\n  UNKNOWN = 0;\n  ACTIVE = 1 [deprecated = true];\n}\n"
        );
        assert_eq!(m.name().as_deref(), Some("com.acme.Order"));
        assert!(m.serialized().is_ok_and(|s| !s.is_empty()));
    }

    #[test]
    fn normalized_qualifies_types_and_sorts() {
        let text = "syntax = \"proto3\";\npackage p;\nmessage A {\n  B b = 2;\n  string s = 1;\n  message B {}\n}\n";
        let m = ProtoModel::parse(text, &[], &[], &ParseOptions::normalized(true)).expect("valid");
        assert_eq!(
            m.canonical(),
            "syntax = \"proto3\";\npackage p;\n\nmessage A {\n  string s = 1;\n  .p.A.B b = 2;\n\n  message B {}\n}\n"
        );
    }

    #[test]
    fn rejects_bad_protos() {
        assert!(parse("syntax = \"proto3\"; message A { string a = 1; int32 b = 1; }").is_err());
        assert!(parse("message {").is_err());
        assert!(parse("syntax = \"proto3\"; message A { Missing m = 1; }").is_err());
        assert!(matches!(
            parse("syntax = \"proto3\"; import \"other.proto\"; message A {}"),
            Err(SchemaError::UnknownReference(_))
        ));
        let deep = format!("syntax = \"proto3\"; {} {}", "message A { ".repeat(200), "}".repeat(200));
        assert!(matches!(parse(&deep), Err(SchemaError::TooDeep(_))));
    }
}

#[cfg(test)]
mod descriptor_tests {
    use super::*;
    use crate::{NoReferences, ReferenceResolver, SchemaSource, SchemaType};

    /// Compiles `main` (importing from `others`) and returns its serialized descriptor in base64,
    /// as a serializer registers it.
    fn descriptor_of(main: &str, others: &[(&str, &str)]) -> String {
        let mut files: HashMap<String, String> = others.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        files.insert("main.proto".into(), main.into());
        let mut compiler = protox::Compiler::with_file_resolver(Sources { files, google: GoogleFileResolver::new() });
        compiler.open_file("main.proto").expect("test schema compiles");
        let set = compiler.file_descriptor_set();
        let file = set.file.into_iter().find(|f| f.name() == "main.proto").expect("main file compiled");
        base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec())
    }

    struct Subjects(Vec<(String, String)>);

    impl ReferenceResolver for Subjects {
        fn resolve(&self, reference: &SchemaReference) -> Option<SchemaSource> {
            self.0.iter().find(|(s, _)| *s == reference.subject).map(|(_, text)| SchemaSource {
                schema_type: SchemaType::Protobuf,
                schema: text.clone(),
                references: Vec::new(),
            })
        }
    }

    fn source(schema: &str, references: Vec<SchemaReference>) -> SchemaSource {
        SchemaSource { schema_type: SchemaType::Protobuf, schema: schema.to_string(), references }
    }

    const ORDER: &str = r#"syntax = "proto3";
package com.acme;
import "google/protobuf/timestamp.proto";
option java_package = "com.acme.proto";
option java_multiple_files = true;
enum Status { UNKNOWN = 0; ACTIVE = 1 [deprecated = true]; }
message Order {
  reserved 5, 9 to 11;
  string id = 1;
  google.protobuf.Timestamp at = 2;
  map<string, Line> lines = 3;
  optional int32 qty = 4;
  oneof pay { string card = 6; string iban = 7; }
  Status status = 12;
  repeated Line.Kind kinds = 13 [packed = false];
  message Line {
    repeated string sku = 1 [json_name = "SKU"];
    Kind kind = 2;
    enum Kind { PLAIN = 0; GIFT = 1; }
  }
}
"#;

    #[test]
    fn descriptor_parses_like_its_text() {
        let options = ParseOptions::default();
        let text = crate::parse(&source(ORDER, Vec::new()), &NoReferences, &options).expect("text parses");
        let encoded = descriptor_of(ORDER, &[]);
        let descriptor =
            crate::parse(&source(&encoded, Vec::new()), &NoReferences, &options).expect("descriptor parses");
        assert_eq!(descriptor.canonical(), text.canonical());
        assert!(descriptor.is_same(&text));
        assert_eq!(descriptor.name().as_deref(), Some("com.acme.Order"));
        let normalized = ParseOptions::normalized(true);
        let a = crate::parse(&source(ORDER, Vec::new()), &NoReferences, &normalized).expect("text parses");
        let b = crate::parse(&source(&encoded, Vec::new()), &NoReferences, &normalized).expect("descriptor parses");
        assert!(a.is_same(&b));
    }

    #[test]
    fn descriptor_imports_resolve_through_references() {
        let money = "syntax = \"proto3\";\npackage shop;\nmessage Money { int64 cents = 1; }\n";
        let invoice = "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\n\
                       message Invoice { string id = 1; Money total = 2; }\n";
        let references = vec![SchemaReference { name: "money.proto".into(), subject: "money".into(), version: 1 }];
        let encoded = descriptor_of(invoice, &[("money.proto", money)]);
        // The referenced schema may itself be registered as a descriptor.
        let money_encoded = {
            let mut compiler = protox::Compiler::with_file_resolver(Sources {
                files: HashMap::from([("money.proto".to_string(), money.to_string())]),
                google: GoogleFileResolver::new(),
            });
            compiler.open_file("money.proto").expect("compiles");
            let file = compiler.file_descriptor_set().file.into_iter().next().expect("one file");
            base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec())
        };
        let options = ParseOptions::default();
        let text = crate::parse(
            &source(invoice, references.clone()),
            &Subjects(vec![("money".into(), money.into())]),
            &options,
        )
        .expect("text parses");
        for stored in [money.to_string(), money_encoded] {
            let resolver = Subjects(vec![("money".into(), stored)]);
            let parsed =
                crate::parse(&source(&encoded, references.clone()), &resolver, &options).expect("descriptor parses");
            assert_eq!(parsed.canonical(), text.canonical());
            assert!(parsed.is_same(&text));
        }
        assert!(matches!(
            crate::parse(&source(&encoded, Vec::new()), &NoReferences, &options),
            Err(SchemaError::UnknownReference(_))
        ));
    }

    #[test]
    fn bad_descriptors_are_invalid() {
        let options = ParseOptions::default();
        // ("////" would be a comment, and so valid `.proto` text: the text reading comes first.)
        for bad in ["!!not*base64", "AAAA", "/w//", "CgRtYWluEgE"] {
            let result = crate::parse(&source(bad, Vec::new()), &NoReferences, &options);
            assert!(matches!(result, Err(SchemaError::Invalid(_))), "{bad}: {result:?}");
        }
        let tiny = ParseOptions { max_schema_bytes: 8, ..ParseOptions::default() };
        let encoded = descriptor_of("syntax = \"proto3\";\nmessage A { string a = 1; }\n", &[]);
        assert!(matches!(
            crate::parse(&source(&encoded, Vec::new()), &NoReferences, &tiny),
            Err(SchemaError::TooLarge(8))
        ));
    }
}
