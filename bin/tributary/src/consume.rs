//! `tributary topic consume`: records printed as they arrive, through the
//! client's consumer (`tributary_client::Consumer`), alone or as a member of
//! a group.
//!
//! ```text
//! topics ──▶ Metadata (unknown topic: exit 4)
//!   without -g: every partition (or -p) assigned, positions from --offset
//!   with -g:    a range-assigning group member; committed offsets, else --offset
//! loop: poll (≤ 500 ms) ──▶ decode (serdes.rs) ──▶ print (template, JSON or YAML) ──▶ flush
//!   until -n records, the end of every partition (-e), or Ctrl-C / SIGTERM
//! close: commit the positions and leave the group (so the others take over at once)
//! ```

use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tributary_client::admin::TopicPartition;
use tributary_client::{ClientError, Consumer, ConsumerConfig, FetchedRecord, PollLimits, StartOffset, Topics};

use crate::cli::{Exit, KafkaTarget};
use crate::output::Format;
use crate::serdes::{DecodeFormat, Registry, decode_framed};
use crate::template::{Shown, Template};

/// Longest a poll waits before the loop checks heartbeats and signals again.
const POLL_WAIT: Duration = Duration::from_millis(500);
/// How often a group member commits its positions.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

pub const CONSUME_HELP: &str = "\
Where to start (--offset; a group starts at its committed offsets and uses this only for
partitions without one): start (or --from-beginning), end (the default: only new records), an
offset N, +N (N records after the start), -N (N records before the end), @TIME (the first record at
or after a time: ms since the epoch, or RFC 3339 such as @2024-05-01T12:00:00Z).

Without -n or -e the command follows the topics until Ctrl-C (exit status 0). With -g GROUP it
joins the group as a consumer (the range assignor, so it shares the group with Kafka's own
consumers), commits its positions every 5 s and when it stops, and leaves the group on Ctrl-C so
the other members take over at once.

Text output: the value of each record on its own line; --print-key puts the key and a tab before
it, --print-headers the headers (k=v,k=v) before that. -f TEMPLATE prints what it says instead:
%t topic, %p partition, %o offset, %k key, %K key length, %v (or %s) value, %V value length,
%T timestamp (ms), %h headers, %% a percent sign, and the escapes \\n \\t \\r \\\\ (add \\n yourself).

JSON output (-o json): one object per record per line:
  {\"topic\": str, \"partition\": int, \"offset\": int, \"timestamp\": int (ms),
   \"key\": str|null, \"value\": str|null, \"headers\": [{\"key\": str, \"value\": str|null}]}
Keys, values and header values are UTF-8 text when they are; otherwise they are base64 and the
object says so with \"key_encoding\": \"base64\" / \"value_encoding\": \"base64\" (a header with
\"encoding\": \"base64\"). A key or value decoded through the schema registry (--key-format,
--value-format) is its JSON form, and \"key_schema_id\" / \"value_schema_id\" give the schema.
-o yaml prints the same fields as one YAML document per record, each starting with ---.

A progress bar shows on stderr with -n when stderr is a terminal.

Examples:
  tributary topic consume orders --from-beginning -e
  tributary topic consume orders -o json -n 10 --offset -10
  tributary topic consume orders -g billing
  tributary topic consume orders -p 0,1 --offset @2024-05-01T12:00:00Z -f '%p/%o %k=%v\\n'
  tributary topic consume orders --value-format avro --from-beginning -e -o json";

/// `tributary topic consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topics to read.
    #[arg(required = true)]
    topics: Vec<String>,
    /// Where to start: start, end, N, +N, -N, @TIME (see below) [default: end].
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    offset: Option<StartOffset>,
    /// Start at the beginning (--offset start).
    #[arg(short = 'b', long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Only these partitions (comma-separated or repeated); not with -g.
    #[arg(short = 'p', long = "partitions", value_delimiter = ',', conflicts_with = "group")]
    partitions: Vec<i32>,
    /// Stop after N records.
    #[arg(short = 'n', long = "num")]
    num: Option<u64>,
    /// Stop at the end of every partition instead of waiting for more.
    #[arg(short = 'e', long = "exit")]
    exit: bool,
    /// Consume as a member of this group (committed offsets, shared partitions).
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Print records through this template (see below).
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Print the key and a tab before each value.
    #[arg(long)]
    print_key: bool,
    /// Print the headers before each record.
    #[arg(long)]
    print_headers: bool,
    /// Decode values written by a schema registry serializer (auto: whatever the schema id says).
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    value_format: DecodeFormat,
    /// Decode keys written by a schema registry serializer.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    key_format: DecodeFormat,
    /// Schema registry URL [default: the profile's, else http://127.0.0.1:8081].
    #[arg(long, env = "TRIBUTARY_SCHEMA_REGISTRY_URL", value_name = "URL")]
    schema_registry_url: Option<String>,
}

/// A key, value or header value in JSON output: text, or base64 when it is not UTF-8.
fn bytes_json(bytes: Option<&[u8]>) -> (Value, bool) {
    match bytes {
        None => (Value::Null, false),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (Value::String(s.to_string()), false),
            Err(_) => (Value::String(BASE64.encode(b)), true),
        },
    }
}

/// A header in JSON output.
#[derive(Serialize)]
struct HeaderJson {
    key: String,
    value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
}

/// One record in JSON output (the shape in the help text), fields in that order.
#[derive(Serialize)]
struct RecordJson<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_schema_id: Option<i32>,
    value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_schema_id: Option<i32>,
    headers: Vec<HeaderJson>,
}

/// A key or value for JSON output: decoded, text, or base64.
fn shown_json(raw: Option<&[u8]>, decoded: &Decoded) -> (Value, Option<&'static str>, Option<i32>) {
    match decoded {
        Some((v, id)) => (v.clone(), None, Some(*id)),
        None => {
            let (v, base64) = bytes_json(raw);
            (v, base64.then_some("base64"), None)
        }
    }
}

fn record_json<'a>(
    topic: &'a str,
    partition: i32,
    r: &FetchedRecord,
    key: &Decoded,
    value: &Decoded,
) -> RecordJson<'a> {
    let (key, key_encoding, key_schema_id) = shown_json(r.key.as_deref(), key);
    let (value, value_encoding, value_schema_id) = shown_json(r.value.as_deref(), value);
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| {
            let (value, base64) = bytes_json(v.as_deref());
            HeaderJson { key: k.clone(), value, encoding: base64.then_some("base64") }
        })
        .collect();
    RecordJson {
        topic,
        partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key,
        key_encoding,
        key_schema_id,
        value,
        value_encoding,
        value_schema_id,
        headers,
    }
}

type Decoded = Option<(Value, i32)>;

/// Prints records in the chosen form.
struct Printer {
    format: Format,
    template: Template,
    out: std::io::BufWriter<std::io::Stdout>,
    buf: Vec<u8>,
}

impl Printer {
    fn print(&mut self, tp: &TopicPartition, r: &FetchedRecord, key: &Decoded, value: &Decoded) -> std::io::Result<()> {
        self.buf.clear();
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.buf, &record_json(&tp.topic, tp.partition, r, key, value))?;
                self.buf.push(b'\n');
            }
            Format::Yaml => {
                let doc = crate::output::to_yaml(&record_json(&tp.topic, tp.partition, r, key, value))?;
                self.buf.extend_from_slice(b"---\n");
                self.buf.extend_from_slice(doc.as_bytes());
            }
            Format::Table => {
                let key_text = key.as_ref().map(|(v, _)| v.to_string());
                let value_text = value.as_ref().map(|(v, _)| v.to_string());
                let shown = Shown {
                    topic: &tp.topic,
                    partition: tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: key_text.as_deref().map(str::as_bytes).or(r.key.as_deref()),
                    value: value_text.as_deref().map(str::as_bytes).or(r.value.as_deref()),
                    headers: &r.headers,
                };
                self.template.render(&shown, &mut self.buf);
            }
        }
        self.out.write_all(&self.buf)
    }
}

/// Runs `topic consume` to its exit status.
pub async fn run(args: ConsumeArgs, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let template_text = match (&args.format, args.print_key, args.print_headers) {
        (Some(_), _, _) if format != Format::Table => {
            eprintln!(
                "error: -f/--format sets the text output; -o {format:?} prints every field already",
                format = format
            );
            return Ok(Exit::Usage);
        }
        (Some(t), _, _) => t.clone(),
        (None, key, headers) => {
            format!("{}{}%v\\n", if headers { "%h\\t" } else { "" }, if key { "%k\\t" } else { "" })
        }
    };
    let template = match Template::parse(&template_text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    let start = if args.from_beginning { StartOffset::Earliest } else { args.offset.unwrap_or(StartOffset::Latest) };
    let registry = if args.value_format != DecodeFormat::Raw || args.key_format != DecodeFormat::Raw {
        let url = crate::cli::registry_url(args.schema_registry_url.as_deref(), &target.profile);
        match Registry::new(&url, target.timeout) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(Exit::Usage);
            }
        }
    } else {
        None
    };

    let mut client = crate::cli::connect(&target).await?;
    let metadata = client.metadata(Some(&args.topics)).await?;
    let mut partitions = Vec::new();
    for topic in &args.topics {
        let Some(t) = metadata.topics.get(topic).filter(|t| t.error_code == 0) else {
            return Err(crate::topic::not_found(topic));
        };
        for p in &args.partitions {
            if !t.partitions.contains_key(p) {
                eprintln!(
                    "error: topic \"{topic}\" has no partition {p}; it has {} (0 to {})",
                    t.partitions.len(),
                    t.partitions.len().saturating_sub(1)
                );
                return Ok(Exit::NotFound);
            }
        }
        for p in t.partitions.keys() {
            if args.partitions.is_empty() || args.partitions.contains(p) {
                partitions.push(TopicPartition::new(topic, *p));
            }
        }
    }
    drop(client);

    let config = ConsumerConfig {
        start,
        auto_commit: args.group.as_ref().map(|_| COMMIT_INTERVAL),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(crate::cli::client_config(&target), args.group.as_deref(), config);
    match &args.group {
        Some(_) => consumer.subscribe(Topics::Names(args.topics.clone())).await?,
        None => consumer.assign(partitions),
    }

    let progress = args.num.map_or_else(indicatif::ProgressBar::hidden, crate::progress::records);
    let mut printer = Printer { format, template, out: std::io::BufWriter::new(std::io::stdout()), buf: Vec::new() };
    let mut registry = registry;
    let mut printed = 0u64;
    let mut exit = Exit::Success;
    let stop = crate::wait_for_signal();
    tokio::pin!(stop);
    let outcome: Result<(), ClientError> = async {
        loop {
            if args.num.is_some_and(|n| printed >= n) {
                return Ok(());
            }
            let limits = PollLimits {
                max_records: args.num.map_or(usize::MAX, |n| usize::try_from(n - printed).unwrap_or(usize::MAX)),
                ..PollLimits::default()
            };
            let records = tokio::select! {
                _ = &mut stop => return Ok(()),
                r = consumer.poll(POLL_WAIT, limits) => r?,
            };
            for (tp, r) in &records {
                let mut decoded: [Decoded; 2] = [None, None];
                for (slot, which, wanted, raw) in
                    [(0, "key", args.key_format, r.key.as_deref()), (1, "value", args.value_format, r.value.as_deref())]
                {
                    let (Some(registry), Some(raw)) = (registry.as_mut(), raw) else { continue };
                    match decode_framed(registry, wanted, raw).await {
                        Ok(d) => decoded[slot] = d,
                        Err(e) => {
                            eprintln!("error: {tp} offset {}: {which}: {e}", r.offset);
                            exit = Exit::Failed;
                        }
                    }
                }
                let [key, value] = &decoded;
                if let Err(e) = printer.print(tp, r, key, value) {
                    // A closed pipe (`| head`) ends the command; nothing more can be shown.
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("error: cannot write the output: {e}");
                        exit = Exit::Failed;
                    }
                    return Ok(());
                }
                printed += 1;
            }
            if let Err(e) = printer.out.flush() {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write the output: {e}");
                    exit = Exit::Failed;
                }
                return Ok(());
            }
            progress.set_position(printed);
            if args.exit && records.is_empty() && consumer.at_end() {
                return Ok(());
            }
        }
    }
    .await;
    if args.num.is_some() {
        progress.finish();
    }
    // Commit what was printed and leave the group, even after an error.
    consumer.close().await;
    let _ = printer.out.flush();
    outcome?;
    Ok(exit)
}
