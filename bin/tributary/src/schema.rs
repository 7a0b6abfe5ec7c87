//! `tributary schema` and `tributary subject`: a schema registry from the
//! command line, over its REST API (`tributary-registry-client`). Argument parsing and
//! rendering only.
//!
//! ```text
//! tributary schema create --subject S --schema FILE      POST /subjects/S/versions
//! tributary schema list                                  GET /schemas
//! tributary schema describe --id N | --subject S         GET /schemas/ids/N, /subjects/S/versions/V
//! tributary schema delete --subject S [--version V]      DELETE /subjects/S[/versions/V]
//! tributary schema check-compatibility --subject S ...   POST /compatibility/subjects/S/versions[/V]
//! tributary subject list | describe S | update S         /subjects, /config/S, /mode/S
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::cli::{Exit, RegistryArgs};
use crate::output::Format;
use crate::table::{Table, pairs};
use tributary_registry_client::{CallError, RegistryClient, encode};

const SCHEMA_HELP: &str = "\
Connection flags (--schema-registry-url, --profile, --timeout, -o) may come before or after the
subcommand. The URL may carry Basic credentials: http://user:password@host:8081.

Exit status: 0 on success; 1 when the registry refused the request (its message and error code
are on stderr as `error: ...`, with a hint); 2 for invalid arguments; 3 when check-compatibility
found the schema incompatible; 4 when the subject, version or schema does not exist; 5 when the
registry could not be reached.

JSON output (-o json) is one object on one line; -o yaml prints the same fields as YAML. Field
names are stable: fields may be added, never renamed or removed. `--help` of each subcommand
shows its shape.

Examples:
  tributary schema create --subject orders-value --schema order.avsc
  tributary schema check-compatibility --subject orders-value --schema order-v2.avsc
  tributary schema describe --subject orders-value -o json
  tributary subject update orders-value --compatibility FULL
  tributary subject list";

const CREATE_JSON: &str = "\
Registering a schema that is already a version of the subject returns that version (nothing new
is created). --references takes a file holding a JSON array:
  [{\"name\": \"shop.Item\", \"subject\": \"item-value\", \"version\": 1}]

JSON output:
  {\"subject\": str, \"id\": int, \"version\": int|null, \"type\": \"AVRO\"|\"JSON\"|\"PROTOBUF\"}

Example:
  tributary schema create --subject orders-value --schema order.avsc";

const LIST_JSON: &str = "\
JSON output:
  {\"schemas\": [{\"subject\": str, \"version\": int, \"id\": int, \"type\": str, \"schema\": str}]}

Example:
  tributary schema list --subject-prefix orders";

const DESCRIBE_JSON: &str = "\
JSON output:
  {\"id\": int, \"subject\": str|null, \"version\": int|null, \"type\": str, \"schema\": str,
   \"references\": [{\"name\": str, \"subject\": str, \"version\": int}],
   \"subjects\": [{\"subject\": str, \"version\": int}]}
With --id, subject and version are null and subjects lists every subject version using the schema;
with --subject, subjects is that one version.

Examples:
  tributary schema describe --subject orders-value --version latest
  tributary schema describe --id 1 -o json";

const DELETE_JSON: &str = "\
Without --version the whole subject is deleted. A soft delete hides versions but keeps their ids
readable; --permanent also removes them (soft-deleting first when needed).

JSON output:
  {\"subject\": str, \"versions\": [int], \"permanent\": bool}

Example:
  tributary schema delete --subject orders-value --version 1 --permanent";

const CHECK_JSON: &str = "\
Without --version the schema is checked against the versions the subject's compatibility level
names (the latest, or all of them for *_TRANSITIVE levels).

JSON output:
  {\"subject\": str, \"version\": str|null, \"is_compatible\": bool, \"messages\": [str]}
Exit status 3 when not compatible.

Example:
  tributary schema check-compatibility --subject orders-value --schema order-v2.avsc";

const SUBJECT_LIST_JSON: &str = "\
JSON output:
  {\"subjects\": [str]}

Example:
  tributary subject list --subject-prefix orders";

const SUBJECT_DESCRIBE_JSON: &str = "\
Compatibility and mode are the subject's own, or the global ones when it has none.

JSON output:
  {\"subject\": str, \"versions\": [int], \"compatibility\": str|null, \"mode\": str|null}

Example:
  tributary subject describe orders-value";

const SUBJECT_UPDATE_JSON: &str = "\
Levels: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.
Modes: READWRITE, READONLY, READONLY_OVERRIDE, IMPORT.

JSON output:
  {\"subject\": str, \"compatibility\": str|null, \"mode\": str|null}

Example:
  tributary subject update orders-value --compatibility FULL";

/// `tributary schema ...`
#[derive(Debug, Args)]
#[command(after_long_help = SCHEMA_HELP)]
pub struct SchemaArgs {
    #[command(flatten)]
    connection: RegistryArgs,
    #[command(subcommand)]
    command: SchemaCommand,
}

/// `tributary subject ...`
#[derive(Debug, Args)]
#[command(after_long_help = SCHEMA_HELP)]
pub struct SubjectArgs {
    #[command(flatten)]
    connection: RegistryArgs,
    #[command(subcommand)]
    command: SubjectCommand,
}

/// Schema formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SchemaType {
    /// Apache Avro (.avsc).
    Avro,
    /// JSON Schema.
    #[value(alias = "jsonschema", alias = "json-schema")]
    Json,
    /// Protocol Buffers (.proto).
    #[value(alias = "proto")]
    Protobuf,
}

impl SchemaType {
    fn wire(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// The schema a register or compatibility call sends.
#[derive(Debug, Args)]
struct SchemaInput {
    /// File with the schema text.
    #[arg(long, value_name = "FILE")]
    schema: PathBuf,
    /// Schema format (default: protobuf for .proto files, else avro).
    #[arg(long = "type", value_enum)]
    schema_type: Option<SchemaType>,
    /// JSON file with the schema's references.
    #[arg(long, value_name = "FILE")]
    references: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Register a schema as a new version of a subject.
    #[command(after_long_help = CREATE_JSON)]
    Create {
        /// Subject, e.g. orders-value.
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        input: SchemaInput,
        /// Normalize the schema before comparing it with existing ones.
        #[arg(long)]
        normalize: bool,
    },
    /// List schemas (the versions of every subject).
    #[command(after_long_help = LIST_JSON)]
    List {
        /// Only subjects starting with this.
        #[arg(long, value_name = "PREFIX")]
        subject_prefix: Option<String>,
        /// Include soft-deleted versions.
        #[arg(long)]
        deleted: bool,
    },
    /// Show one schema: by global id, or by subject and version.
    #[command(after_long_help = DESCRIBE_JSON)]
    Describe {
        /// Global schema id.
        #[arg(long, conflicts_with_all = ["subject", "version"], required_unless_present = "subject")]
        id: Option<i64>,
        /// Subject.
        #[arg(long)]
        subject: Option<String>,
        /// Version of the subject: a number or latest (default latest).
        #[arg(long, requires = "subject")]
        version: Option<String>,
    },
    /// Delete a subject, or one version of it.
    #[command(after_long_help = DELETE_JSON)]
    Delete {
        /// Subject.
        #[arg(long)]
        subject: String,
        /// A version number, latest, or all (default all).
        #[arg(long, default_value = "all")]
        version: String,
        /// Remove for good (a soft delete first when needed).
        #[arg(long)]
        permanent: bool,
    },
    /// Check whether a schema could be registered under a subject.
    #[command(after_long_help = CHECK_JSON)]
    CheckCompatibility {
        /// Subject.
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        input: SchemaInput,
        /// Only against this version (a number or latest).
        #[arg(long)]
        version: Option<String>,
        /// Normalize the schema first.
        #[arg(long)]
        normalize: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SubjectCommand {
    /// List subjects.
    #[command(after_long_help = SUBJECT_LIST_JSON)]
    List {
        /// Only subjects starting with this.
        #[arg(long, value_name = "PREFIX")]
        subject_prefix: Option<String>,
        /// Include soft-deleted subjects.
        #[arg(long)]
        deleted: bool,
    },
    /// Versions, compatibility level and mode of a subject.
    #[command(after_long_help = SUBJECT_DESCRIBE_JSON)]
    Describe {
        /// Subject.
        subject: String,
    },
    /// Set a subject's compatibility level and/or mode.
    #[command(after_long_help = SUBJECT_UPDATE_JSON)]
    Update {
        /// Subject.
        subject: String,
        /// Compatibility level (any case).
        #[arg(long, value_name = "LEVEL", required_unless_present = "mode")]
        compatibility: Option<String>,
        /// Mode (any case).
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
    },
}

/// What a command ended with.
enum Outcome {
    Done,
    Incompatible,
}

/// A failure, with what to do about it.
struct Failure {
    error: CallError,
    hint: Option<String>,
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Failure {
        Failure { error, hint: None }
    }
}

fn local(message: String) -> Failure {
    Failure { error: CallError::Invalid(message), hint: None }
}

/// Runs a schema command.
pub fn run_schema(args: SchemaArgs) -> ExitCode {
    let SchemaArgs { connection, command } = args;
    run_with(connection, move |client, format| Box::pin(schema_command(client, command, format)))
}

/// Runs a subject command.
pub fn run_subject(args: SubjectArgs) -> ExitCode {
    let SubjectArgs { connection, command } = args;
    run_with(connection, move |client, format| Box::pin(subject_command(client, command, format)))
}

type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, Failure>>>>;

fn run_with(connection: RegistryArgs, work: impl FnOnce(RegistryClient, Format) -> Work) -> ExitCode {
    let (url, timeout) = match connection.resolve() {
        Ok(r) => r,
        Err((exit, message)) => {
            eprintln!("error: {message}");
            return exit.code();
        }
    };
    let client = match RegistryClient::new(&url, timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.code();
        }
    };
    let runtime = match crate::runtime(crate::Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let url = client.url().to_string();
    match runtime.block_on(work(client, connection.common.output)) {
        Ok(Outcome::Done) => Exit::Success.code(),
        Ok(Outcome::Incompatible) => Exit::CheckFailed.code(),
        Err(failure) => {
            eprintln!("error: {}", failure.error);
            if let Some(hint) = failure.hint.or_else(|| hint(&failure.error, &url)) {
                eprintln!("hint: {hint}");
            }
            match failure.error {
                CallError::Unreachable { .. } => Exit::Unreachable,
                CallError::Registry { status: 404, .. } => Exit::NotFound,
                _ => Exit::Failed,
            }
            .code()
        }
    }
}

/// What to do next, by error.
fn hint(error: &CallError, url: &str) -> Option<String> {
    let text = match error {
        CallError::Unreachable { .. } => format!(
            "is a registry running at {url}? `tributary start` runs one on port 8081; point at another with \
             --schema-registry-url or TRIBUTARY_SCHEMA_REGISTRY_URL"
        ),
        CallError::Invalid(_) => return None,
        CallError::Registry { status, code, .. } => match code.unwrap_or(i64::from(*status)) {
            40401 => "`tributary subject list` shows the subjects that exist (add --deleted for soft-deleted ones)".into(),
            40402 => "`tributary subject describe <subject>` lists its versions".into(),
            40403 => "`tributary schema list` shows the registered schemas and their ids".into(),
            40404 => "the subject is soft-deleted; add --permanent to remove it for good, or register a schema to revive it".into(),
            40405 | 40407 => "delete it without --permanent first (a soft delete), then with --permanent".into(),
            40406 => "that version is soft-deleted; add --permanent to remove it for good".into(),
            40408 | 40409 => "nothing is set for this subject; the global setting applies".into(),
            409 | 40901 => "the schema breaks the subject's compatibility rules: run `tributary schema check-compatibility` \
                            for the reasons, or relax them with `tributary subject update <subject> --compatibility NONE`"
                .into(),
            42201 => "the schema does not parse: check --type matches the file, and that every reference in \
                      --references names a registered subject and version"
                .into(),
            42202 => "a version is a number from 1, or latest".into(),
            42203 => "levels: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE".into(),
            42204 => "modes: READWRITE, READONLY, READONLY_OVERRIDE, IMPORT".into(),
            42205 => "the subject or registry is read-only: `tributary subject update <subject> --mode READWRITE`".into(),
            42206 => "other schemas reference it; delete those first (`GET /subjects/<s>/versions/<v>/referencedby` lists them)".into(),
            401 | 403 => "the registry wants credentials: http://user:password@host:port".into(),
            50001..=50004 => "the registry cannot reach its Kafka cluster or its writer; check that the platform is up and retry".into(),
            _ => return None,
        },
    };
    Some(text)
}

fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| local(format!("cannot read the {what} file {}: {e}", path.display())))
}

/// The request body of a register or compatibility call.
fn schema_body(input: &SchemaInput) -> Result<(Value, SchemaType), Failure> {
    let schema = input.schema.as_path();
    let text = read_file(schema, "schema")?;
    let kind = input.schema_type.unwrap_or_else(|| {
        if schema.extension().is_some_and(|e| e.eq_ignore_ascii_case("proto")) {
            SchemaType::Protobuf
        } else {
            SchemaType::Avro
        }
    });
    let mut body = json!({"schema": text});
    if kind != SchemaType::Avro {
        body["schemaType"] = json!(kind.wire());
    }
    if let Some(path) = &input.references {
        let refs: Value = serde_json::from_str(&read_file(path, "references")?)
            .map_err(|e| local(format!("{} is not JSON: {e}", path.display())))?;
        if !refs.is_array() {
            return Err(local(format!(
                "{} must hold a JSON array of {{\"name\", \"subject\", \"version\"}} objects",
                path.display()
            )));
        }
        body["references"] = refs;
    }
    Ok((body, kind))
}

fn type_of(v: &Value) -> String {
    v.get("schemaType").and_then(Value::as_str).unwrap_or("AVRO").to_string()
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(other) => other.to_string(),
    }
}

/// The schema text for people: JSON schemas indented, Protobuf as is.
fn pretty_schema(schema: &str, kind: &str) -> String {
    if kind != "PROTOBUF"
        && let Ok(v) = serde_json::from_str::<Value>(schema)
        && let Ok(pretty) = serde_json::to_string_pretty(&v)
    {
        return pretty;
    }
    schema.to_string()
}

fn references_of(v: &Value) -> Value {
    v.get("references").cloned().filter(Value::is_array).unwrap_or_else(|| json!([]))
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

fn truthy(flag: bool) -> Option<String> {
    flag.then(|| "true".to_string())
}

async fn schema_command(client: RegistryClient, command: SchemaCommand, format: Format) -> Result<Outcome, Failure> {
    match command {
        SchemaCommand::Create { subject, input, normalize } => {
            let (body, kind) = schema_body(&input)?;
            let q = query(&[("normalize", truthy(normalize))]);
            let registered = client.post(&format!("/subjects/{}/versions{q}", encode(&subject)), &body).await?;
            let id = registered
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| local(format!("the registry's answer has no id: {registered}")))?;
            // Newer registries return the version; otherwise a lookup finds it.
            let version = match registered.get("version").and_then(Value::as_i64) {
                Some(v) => Some(v),
                None => client
                    .post(&format!("/subjects/{}{q}", encode(&subject)), &body)
                    .await
                    .ok()
                    .and_then(|v| v.get("version").and_then(Value::as_i64)),
            };
            match format {
                Format::Json | Format::Yaml => {
                    format.emit(&json!({"subject": subject, "id": id, "version": version, "type": kind.wire()}))
                }
                Format::Table => match version {
                    Some(v) => println!("Registered schema id {id} as version {v} of subject {subject}"),
                    None => println!("Registered schema id {id} under subject {subject}"),
                },
            }
            Ok(Outcome::Done)
        }
        SchemaCommand::List { subject_prefix, deleted } => {
            let q = query(&[("subjectPrefix", subject_prefix), ("deleted", truthy(deleted))]);
            let listed = client.get(&format!("/schemas{q}")).await?;
            let items = listed.as_array().cloned().unwrap_or_default();
            match format {
                Format::Json | Format::Yaml => {
                    let schemas: Vec<Value> = items
                        .iter()
                        .map(|s| {
                            json!({"subject": s.get("subject"), "version": s.get("version"), "id": s.get("id"),
                                   "type": type_of(s), "schema": s.get("schema")})
                        })
                        .collect();
                    format.emit(&json!({ "schemas": schemas }));
                }
                Format::Table => {
                    let mut table = Table::new(&["SUBJECT", "VERSION", "ID", "TYPE"]);
                    for s in &items {
                        table.row(vec![text(s, "subject"), text(s, "version"), text(s, "id"), type_of(s)]);
                    }
                    print!("{}", table.render());
                }
            }
            Ok(Outcome::Done)
        }
        SchemaCommand::Describe { id: Some(id), .. } => {
            let schema = client.get(&format!("/schemas/ids/{id}")).await?;
            let subjects = client.get(&format!("/schemas/ids/{id}/versions")).await.unwrap_or_else(|_| json!([]));
            describe_output(format, id, None, None, &schema, subjects);
            Ok(Outcome::Done)
        }
        SchemaCommand::Describe { id: None, subject, version } => {
            let subject = subject.ok_or_else(|| local("give --id or --subject".to_string()))?;
            let version = version.unwrap_or_else(|| "latest".to_string());
            let v = client.get(&format!("/subjects/{}/versions/{}", encode(&subject), encode(&version))).await?;
            let id = v.get("id").and_then(Value::as_i64).unwrap_or(0);
            let number = v.get("version").and_then(Value::as_i64);
            let subjects = json!([{"subject": subject, "version": number}]);
            describe_output(format, id, Some(&subject), number, &v, subjects);
            Ok(Outcome::Done)
        }
        SchemaCommand::Delete { subject, version, permanent } => {
            let path = if version.eq_ignore_ascii_case("all") {
                format!("/subjects/{}", encode(&subject))
            } else {
                format!("/subjects/{}/versions/{}", encode(&subject), encode(&version))
            };
            let deleted = if permanent {
                match client.delete(&format!("{path}?permanent=true")).await {
                    Ok(v) => v,
                    // Not soft-deleted yet: do that first, as the registry requires.
                    Err(e) if matches!(e.code(), Some(40405 | 40407)) => {
                        let soft = client.delete(&path).await?;
                        // A numbered path is needed once "latest" is gone from the live versions.
                        let path = match soft.as_i64() {
                            Some(n) => format!("/subjects/{}/versions/{n}", encode(&subject)),
                            None => path,
                        };
                        client.delete(&format!("{path}?permanent=true")).await?
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                client.delete(&path).await?
            };
            let versions: Vec<Value> = match deleted {
                Value::Array(a) => a,
                other => vec![other],
            };
            match format {
                Format::Json | Format::Yaml => {
                    format.emit(&json!({"subject": subject, "versions": versions, "permanent": permanent}))
                }
                Format::Table => {
                    let list: Vec<String> = versions.iter().map(Value::to_string).collect();
                    let how = if permanent { "Permanently deleted" } else { "Soft-deleted" };
                    println!("{how} version(s) {} of subject {subject}", list.join(", "));
                }
            }
            Ok(Outcome::Done)
        }
        SchemaCommand::CheckCompatibility { subject, input, version, normalize } => {
            let (body, _) = schema_body(&input)?;
            let q = query(&[("verbose", Some("true".to_string())), ("normalize", truthy(normalize))]);
            let path = match &version {
                Some(v) => format!("/compatibility/subjects/{}/versions/{}{q}", encode(&subject), encode(v)),
                None => format!("/compatibility/subjects/{}/versions{q}", encode(&subject)),
            };
            let answer = client.post(&path, &body).await?;
            let compatible = answer.get("is_compatible").and_then(Value::as_bool).unwrap_or(false);
            let messages: Vec<String> = answer
                .get("messages")
                .and_then(Value::as_array)
                .map(|m| m.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect())
                .unwrap_or_default();
            match format {
                Format::Json | Format::Yaml => format.emit(&json!({"subject": subject, "version": version,
                    "is_compatible": compatible, "messages": messages})),
                Format::Table => {
                    let against = version
                        .as_deref()
                        .map_or_else(|| "the subject's versions".to_string(), |v| format!("version {v}"));
                    if compatible {
                        println!("Compatible with {against} of {subject}");
                    } else {
                        println!("NOT compatible with {against} of {subject}");
                    }
                    for m in &messages {
                        println!("  - {m}");
                    }
                }
            }
            Ok(if compatible { Outcome::Done } else { Outcome::Incompatible })
        }
    }
}

fn describe_output(
    format: Format,
    id: i64,
    subject: Option<&str>,
    version: Option<i64>,
    schema: &Value,
    subjects: Value,
) {
    let kind = type_of(schema);
    let schema_text = schema.get("schema").and_then(Value::as_str).unwrap_or_default().to_string();
    let references = references_of(schema);
    match format {
        Format::Json | Format::Yaml => format
            .emit(&json!({"id": id, "subject": subject, "version": version, "type": kind,
            "schema": schema_text, "references": references, "subjects": subjects})),
        Format::Table => {
            let mut items: Vec<(&str, String)> = vec![("ID", id.to_string()), ("TYPE", kind.clone())];
            if let Some(s) = subject {
                items.push(("SUBJECT", s.to_string()));
            }
            if let Some(v) = version {
                items.push(("VERSION", v.to_string()));
            }
            if subject.is_none() {
                let used: Vec<String> = subjects
                    .as_array()
                    .map(|a| a.iter().map(|s| format!("{}:{}", text(s, "subject"), text(s, "version"))).collect())
                    .unwrap_or_default();
                items.push(("USED BY", if used.is_empty() { "-".to_string() } else { used.join(", ") }));
            }
            if let Some(refs) = references.as_array().filter(|a| !a.is_empty()) {
                let list: Vec<String> = refs
                    .iter()
                    .map(|r| format!("{} -> {}:{}", text(r, "name"), text(r, "subject"), text(r, "version")))
                    .collect();
                items.push(("REFERENCES", list.join(", ")));
            }
            print!("{}", pairs(&items));
            println!();
            println!("{}", pretty_schema(&schema_text, &kind));
        }
    }
}

async fn subject_command(client: RegistryClient, command: SubjectCommand, format: Format) -> Result<Outcome, Failure> {
    match command {
        SubjectCommand::List { subject_prefix, deleted } => {
            let q = query(&[("subjectPrefix", subject_prefix), ("deleted", truthy(deleted))]);
            let listed = client.get(&format!("/subjects{q}")).await?;
            let subjects: Vec<String> = listed
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            match format {
                Format::Json | Format::Yaml => format.emit(&json!({ "subjects": subjects })),
                Format::Table => {
                    let mut table = Table::new(&["SUBJECT"]);
                    for s in subjects {
                        table.row(vec![s]);
                    }
                    print!("{}", table.render());
                }
            }
            Ok(Outcome::Done)
        }
        SubjectCommand::Describe { subject } => {
            let s = encode(&subject);
            let versions = client.get(&format!("/subjects/{s}/versions")).await?;
            let compatibility = client
                .get(&format!("/config/{s}?defaultToGlobal=true"))
                .await
                .ok()
                .and_then(|c| c.get("compatibilityLevel").and_then(Value::as_str).map(str::to_string));
            let mode = client
                .get(&format!("/mode/{s}?defaultToGlobal=true"))
                .await
                .ok()
                .and_then(|m| m.get("mode").and_then(Value::as_str).map(str::to_string));
            match format {
                Format::Json | Format::Yaml => format.emit(&json!({"subject": subject, "versions": versions,
                    "compatibility": compatibility, "mode": mode})),
                Format::Table => {
                    let list: Vec<String> =
                        versions.as_array().map(|a| a.iter().map(Value::to_string).collect()).unwrap_or_default();
                    print!(
                        "{}",
                        pairs(&[
                            ("SUBJECT", subject.clone()),
                            ("VERSIONS", list.join(", ")),
                            ("COMPATIBILITY", compatibility.unwrap_or_else(|| "-".to_string())),
                            ("MODE", mode.unwrap_or_else(|| "-".to_string())),
                        ])
                    );
                }
            }
            Ok(Outcome::Done)
        }
        SubjectCommand::Update { subject, compatibility, mode } => {
            let s = encode(&subject);
            let mut set_level = None;
            let mut set_mode = None;
            if let Some(level) = compatibility {
                let answer =
                    client.put(&format!("/config/{s}"), &json!({"compatibility": level.to_uppercase()})).await?;
                set_level = answer.get("compatibility").and_then(Value::as_str).map(str::to_string);
            }
            if let Some(m) = mode {
                let answer = client.put(&format!("/mode/{s}"), &json!({"mode": m.to_uppercase()})).await?;
                set_mode = answer.get("mode").and_then(Value::as_str).map(str::to_string);
            }
            match format {
                Format::Json | Format::Yaml => {
                    format.emit(&json!({"subject": subject, "compatibility": set_level, "mode": set_mode}))
                }
                Format::Table => {
                    if let Some(l) = &set_level {
                        println!("Compatibility of {subject} set to {l}");
                    }
                    if let Some(m) = &set_mode {
                        println!("Mode of {subject} set to {m}");
                    }
                }
            }
            Ok(Outcome::Done)
        }
    }
}
