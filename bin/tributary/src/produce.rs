//! `tributary topic produce`: one record per input line, through the
//! client's batching producer (`tributary_client::Producer`).
//!
//! ```text
//! reader thread: stdin or --file, line by line ──▶ channel (chunks of lines, bytes read)
//!      ▼
//! each line ──▶ key / value / partition / timestamp (-k, --key-separator, -f template)
//!           ──▶ --key-format / --value-format: JSON ──▶ schema encoder (serdes.rs) ──▶ framed bytes
//!           ──▶ Producer::send ──▶ deliveries awaited in order (at most 50,000 outstanding)
//!      ▼
//! summary: records, bytes, per-partition counts, elapsed; the first errors on stderr
//! ```
//!
//! The input is read on its own thread, so reading, encoding and sending
//! overlap; the producer batches whatever piled up while a request was on
//! the wire.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokio::sync::mpsc;
use tributary_client::{Acks, ClientError, Compression, Delivery, ProduceError, Producer, ProducerConfig, RecordSpec};

use crate::cli::{Exit, KafkaTarget};
use crate::output::Format;
use crate::serdes::{Encoder, Registry, SchemaFormat, Side};
use crate::template::InputTemplate;

/// Deliveries awaited at most at once before reading more input.
const OUTSTANDING_MAX: usize = 50_000;
/// Lines handed from the reader thread at a time.
const CHUNK_LINES: usize = 2_000;
/// Record errors printed before the rest are only counted.
const ERRORS_SHOWN: usize = 5;

pub const PRODUCE_HELP: &str = "\
Each line of the input (stdin, or --file) is one record; the trailing newline is not part of it.
Keys: -k KEY gives every record the same key; --key-separator SEP splits each line at the first SEP
into key and value (kcat's -K); -f reads each line through a template (%k key, %v value, %p
partition, %T timestamp in ms, with the text between them: -f '%k %v\\n'). Without any of them
records have no key and go to partitions as Kafka's producers send them (sticky per batch); keyed
records go where Kafka's murmur2 partitioner puts them, unless -p names a partition.

Schema formats: with --value-format (and --key-format) each value (key) is the JSON form of the
record: Avro's JSON encoding (a union as {\"string\": \"x\"}) for avro, plain JSON for json-schema
(validated against the schema before it is sent), the Protobuf JSON mapping for protobuf. The
schema in --schema FILE (the format follows from .avsc, .json or .proto when not given) is
registered under --subject (default <topic>-value; <topic>-key for keys); without --schema the
subject's latest version is used. Records are framed as Confluent's serializers frame them (magic
byte 0, the schema id, Protobuf's message indexes), so Confluent's deserializers read them.
--message NAME picks the Protobuf message when the file has several.

A progress bar (bytes read) shows on stderr when it is a terminal and the input is a file (or
stdin redirected from one).

Output: a summary. JSON (-o json) is one line:
  {\"topic\": str, \"records\": int, \"bytes\": int, \"partitions\": {\"<partition>\": int},
   \"elapsed_ms\": int, \"failed\": int}
records counts records written, bytes their keys and values; failed counts records that were not
written (the exit status is then 1, or 4 for a partition that does not exist, and the first
errors are on stderr with the Kafka error name and what to do).

Examples:
  seq 1 100000 | tributary topic produce numbers
  tributary topic produce orders --file orders.txt --key-separator : -H source=import
  tributary topic produce orders -f '%k %v\\n' -p 0 --acks 1 --compression zstd < lines.txt
  echo '{\"id\": 1, \"item\": \"tea\"}' | tributary topic produce orders --value-format avro --schema order.avsc
  tributary topic produce events --value-format protobuf --schema events.proto --message Click < clicks.jsonl";

/// Acknowledgements, as `--acks` reads them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum AcksArg {
    /// Every in-sync replica (-1).
    #[default]
    #[value(alias = "-1")]
    All,
    /// The leader only.
    #[value(name = "1", alias = "leader")]
    One,
    /// No answer (offsets unknown).
    #[value(name = "0", alias = "none")]
    Zero,
}

/// Batch codecs, as `--compression` reads them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum CompressionArg {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// `tributary topic produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Read records from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Key of every record.
    #[arg(short = 'k', long, conflicts_with_all = ["key_separator", "format"])]
    key: Option<String>,
    /// Split each line at the first SEP into key and value (like kcat's -K).
    #[arg(short = 'K', long, value_name = "SEP", conflicts_with = "format")]
    key_separator: Option<String>,
    /// How each line is read: %k key, %v value, %p partition, %T timestamp (ms); e.g. '%k %v\n'.
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Header KEY=VALUE on every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = header)]
    headers: Vec<(String, String)>,
    /// Partition of every record (else Kafka's partitioner chooses).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value_t)]
    acks: AcksArg,
    /// Compression of the batches.
    #[arg(short = 'z', long, value_enum, default_value_t)]
    compression: CompressionArg,
    /// An empty value is a tombstone (null) rather than an empty record.
    #[arg(short = 'Z', long)]
    tombstone: bool,
    /// Values are the JSON form of records in this schema format (see below).
    #[arg(long, value_enum, visible_alias = "schema-type", value_name = "FORMAT")]
    value_format: Option<SchemaFormat>,
    /// Keys are the JSON form of records in this schema format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    key_format: Option<SchemaFormat>,
    /// Schema of the values (.avsc, .json or .proto), registered under the subject.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Schema of the keys, registered under the key subject.
    #[arg(long, value_name = "FILE")]
    key_schema: Option<PathBuf>,
    /// Subject of the value schema [default: <topic>-value].
    #[arg(long)]
    subject: Option<String>,
    /// Subject of the key schema [default: <topic>-key].
    #[arg(long)]
    key_subject: Option<String>,
    /// Protobuf message of the values (full or short name), when the schema has several.
    #[arg(long, value_name = "NAME")]
    message: Option<String>,
    /// Protobuf message of the keys.
    #[arg(long, value_name = "NAME")]
    key_message: Option<String>,
    /// Schema registry URL [default: the profile's, else http://127.0.0.1:8081].
    #[arg(long, env = "TRIBUTARY_SCHEMA_REGISTRY_URL", value_name = "URL")]
    schema_registry_url: Option<String>,
}

fn header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("\"{s}\" is not KEY=VALUE")),
    }
}

/// How lines become keys and values.
enum Splitter {
    Plain,
    FixedKey(Vec<u8>),
    Separator(Vec<u8>),
    Template(InputTemplate),
}

/// One line's record before encoding.
struct Line<'a> {
    key: Option<&'a [u8]>,
    value: &'a [u8],
    partition: Option<i32>,
    timestamp: Option<i64>,
}

impl Splitter {
    fn split<'a>(&'a self, line: &'a [u8]) -> Result<Line<'a>, String> {
        let plain = Line { key: None, value: line, partition: None, timestamp: None };
        match self {
            Splitter::Plain => Ok(plain),
            Splitter::FixedKey(k) => Ok(Line { key: Some(k), ..plain }),
            Splitter::Separator(sep) => match line.windows(sep.len()).position(|w| w == sep.as_slice()) {
                Some(at) => Ok(Line { key: Some(&line[..at]), value: &line[at + sep.len()..], ..plain }),
                None => Err(format!("no key separator \"{}\" in the line", String::from_utf8_lossy(sep))),
            },
            Splitter::Template(t) => {
                let p = t.split(line)?;
                Ok(Line {
                    key: p.key,
                    value: p.value.unwrap_or_default(),
                    partition: p.partition,
                    timestamp: p.timestamp,
                })
            }
        }
    }
}

/// What the reader thread hands over.
enum Input {
    Lines { lines: Vec<Vec<u8>>, bytes: u64 },
    Failed(String),
}

/// The input's size when it is a regular file (for the progress bar).
fn input_size(file: Option<&PathBuf>) -> Option<u64> {
    let meta = match file {
        Some(path) => std::fs::metadata(path).ok()?,
        None => {
            use std::os::fd::AsFd;
            let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
            std::fs::File::from(fd).metadata().ok()?
        }
    };
    meta.is_file().then_some(meta.len())
}

fn spawn_reader(reader: Box<dyn Read + Send>, tx: mpsc::Sender<Input>) {
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
        loop {
            let mut lines = Vec::with_capacity(CHUNK_LINES);
            let mut bytes = 0u64;
            let mut eof = false;
            while lines.len() < CHUNK_LINES {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        bytes += n as u64;
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        lines.push(line);
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Input::Failed(format!("cannot read the input: {e}")));
                        return;
                    }
                }
            }
            if (!lines.is_empty() || bytes > 0) && tx.blocking_send(Input::Lines { lines, bytes }).is_err() {
                return;
            }
            if eof {
                return;
            }
        }
    });
}

#[derive(Serialize)]
struct Summary {
    topic: String,
    records: u64,
    bytes: u64,
    partitions: BTreeMap<String, u64>,
    elapsed_ms: u128,
    failed: u64,
}

/// Counts deliveries as they come back.
struct Tally {
    records: u64,
    bytes: u64,
    partitions: BTreeMap<i32, u64>,
    failed: u64,
    shown: usize,
    exit: Exit,
}

impl Tally {
    fn fail(&mut self, what: &str) {
        self.failed += 1;
        if self.shown < ERRORS_SHOWN {
            eprintln!("error: {what}");
            self.shown += 1;
        }
        self.exit = self.exit.or(Exit::Failed);
    }

    async fn settle(&mut self, line: u64, delivery: Delivery, size: u64) {
        match delivery.wait().await {
            Ok(d) => {
                self.records += 1;
                self.bytes += size;
                *self.partitions.entry(d.partition).or_default() += 1;
            }
            Err(e) => {
                if matches!(e, ProduceError::UnknownPartition { .. } | ProduceError::UnknownTopic(_)) {
                    self.exit = self.exit.or(Exit::NotFound);
                }
                if let ProduceError::Failed(inner) = &e
                    && inner.kafka().is_none()
                {
                    self.exit = self.exit.or(Exit::Unreachable);
                }
                self.fail(&format!("line {line}: {e}"));
            }
        }
    }
}

/// Runs `topic produce` to its exit status.
pub async fn run(args: ProduceArgs, target: KafkaTarget, format: Format) -> Result<Exit, ClientError> {
    let splitter = match (&args.key, &args.key_separator, &args.format) {
        (Some(k), _, _) => Splitter::FixedKey(k.clone().into_bytes()),
        (_, Some(sep), _) if sep.is_empty() => return Ok(usage("--key-separator must not be empty")),
        (_, Some(sep), _) => Splitter::Separator(sep.clone().into_bytes()),
        (_, _, Some(t)) => match InputTemplate::parse(t) {
            Ok(t) => Splitter::Template(t),
            Err(e) => return Ok(usage(&e)),
        },
        _ => Splitter::Plain,
    };
    let key_format = args.key_format.or_else(|| args.key_schema.as_deref().and_then(SchemaFormat::from_path));
    let value_format = args.value_format.or_else(|| args.schema.as_deref().and_then(SchemaFormat::from_path));
    if args.key_schema.is_some() && key_format.is_none() {
        return Ok(usage("give --key-format: the --key-schema file's extension is not .avsc, .json or .proto"));
    }
    if args.schema.is_some() && value_format.is_none() {
        return Ok(usage("give --value-format: the --schema file's extension is not .avsc, .json or .proto"));
    }
    // The topic first: an unknown topic or an unreachable cluster ends the command before any input is read.
    let mut client = crate::cli::connect(&target).await?;
    let metadata = client.metadata(Some(std::slice::from_ref(&args.topic))).await?;
    let Some(topic) = metadata.topics.get(&args.topic).filter(|t| t.error_code == 0) else {
        return Err(crate::topic::not_found(&args.topic));
    };
    let count = topic.partitions.len() as i32;
    if let Some(p) = args.partition
        && !(0..count).contains(&p)
    {
        eprintln!("error: topic \"{}\" has no partition {p}; it has {count} (0 to {})", args.topic, count - 1);
        return Ok(Exit::NotFound);
    }
    drop(client);

    let registry_url = crate::cli::registry_url(args.schema_registry_url.as_deref(), &target.profile);
    let registry = Registry::new(&registry_url, target.timeout);
    let encoder = |side: Side, format: Option<SchemaFormat>| {
        let (schema, subject, message) = match side {
            Side::Key => (&args.key_schema, &args.key_subject, &args.key_message),
            Side::Value => (&args.schema, &args.subject, &args.message),
        };
        let subject = subject.clone().unwrap_or_else(|| format!("{}-{}", args.topic, side.name()));
        (format, schema.clone(), subject, message.clone())
    };
    let mut encoders: [Option<Encoder>; 2] = [None, None];
    for (slot, side, format) in [(0, Side::Key, key_format), (1, Side::Value, value_format)] {
        let (format, schema, subject, message) = encoder(side, format);
        let Some(format) = format else { continue };
        let registry = match &registry {
            Ok(r) => r,
            Err(e) => return Ok(usage(e)),
        };
        match Encoder::new(registry, format, schema.as_deref(), &subject, message.as_deref()).await {
            Ok(e) => encoders[slot] = Some(e),
            Err((exit, message)) => {
                eprintln!("error: {side}: {message}", side = side.name());
                return Ok(exit);
            }
        }
    }
    let [key_encoder, value_encoder] = encoders;

    let reader: Box<dyn Read + Send> = match &args.file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", path.display());
                return Ok(Exit::NotFound);
            }
        },
        None => Box::new(std::io::stdin()),
    };
    let progress = crate::progress::bytes(input_size(args.file.as_ref()));

    let mut config = crate::cli::client_config(&target);
    config.client_id = "tributary-cli-producer".to_string();
    let producer = Producer::spawn(
        config,
        ProducerConfig {
            acks: match args.acks {
                AcksArg::All => Acks::All,
                AcksArg::One => Acks::Leader,
                AcksArg::Zero => Acks::None,
            },
            compression: match args.compression {
                CompressionArg::None => Compression::None,
                CompressionArg::Gzip => Compression::Gzip,
                CompressionArg::Snappy => Compression::Snappy,
                CompressionArg::Lz4 => Compression::Lz4,
                CompressionArg::Zstd => Compression::Zstd,
            },
            ..ProducerConfig::default()
        },
    );
    let (tx, mut rx) = mpsc::channel(8);
    spawn_reader(reader, tx);

    let started = Instant::now();
    let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        args.headers.iter().map(|(k, v)| (k.clone().into_bytes(), Some(v.clone().into_bytes()))).collect();
    let mut tally =
        Tally { records: 0, bytes: 0, partitions: BTreeMap::new(), failed: 0, shown: 0, exit: Exit::Success };
    let mut outstanding: VecDeque<(u64, Delivery, u64)> = VecDeque::new();
    let mut line_no = 0u64;
    while let Some(input) = rx.recv().await {
        let (lines, bytes) = match input {
            Input::Lines { lines, bytes } => (lines, bytes),
            Input::Failed(e) => {
                tally.fail(&e);
                break;
            }
        };
        for line in &lines {
            line_no += 1;
            let parts = match splitter.split(line) {
                Ok(p) => p,
                Err(e) => {
                    tally.fail(&format!("line {line_no}: {e}"));
                    continue;
                }
            };
            let key = match (parts.key, &key_encoder) {
                (Some(k), Some(enc)) => match enc.encode(k) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tally.fail(&format!("line {line_no}: key: {e}"));
                        continue;
                    }
                },
                (k, _) => k.map(<[u8]>::to_vec),
            };
            let value = match &value_encoder {
                _ if args.tombstone && parts.value.is_empty() => None,
                Some(enc) => match enc.encode(parts.value) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tally.fail(&format!("line {line_no}: value: {e}"));
                        continue;
                    }
                },
                None => Some(parts.value.to_vec()),
            };
            let size = (key.as_ref().map_or(0, Vec::len) + value.as_ref().map_or(0, Vec::len)) as u64;
            let record = RecordSpec {
                key,
                value,
                timestamp: parts.timestamp.unwrap_or_else(tributary_types::now_ms),
                headers: headers.clone(),
            };
            let partition = parts.partition.or(args.partition);
            let delivery = producer.send(&args.topic, partition, record).await;
            outstanding.push_back((line_no, delivery, size));
            while outstanding.len() > OUTSTANDING_MAX {
                if let Some((n, d, size)) = outstanding.pop_front() {
                    tally.settle(n, d, size).await;
                }
            }
        }
        progress.inc(bytes);
    }
    drop(producer);
    while let Some((n, d, size)) = outstanding.pop_front() {
        tally.settle(n, d, size).await;
    }
    progress.finish();
    let summary = Summary {
        topic: args.topic.clone(),
        records: tally.records,
        bytes: tally.bytes,
        partitions: tally.partitions.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
        elapsed_ms: started.elapsed().as_millis(),
        failed: tally.failed,
    };
    if tally.failed > ERRORS_SHOWN as u64 {
        eprintln!("error: {} more records failed", tally.failed - ERRORS_SHOWN as u64);
    }
    if !format.print(&summary) {
        let secs = summary.elapsed_ms as f64 / 1000.0;
        let rate = if secs > 0.0 { summary.records as f64 / secs } else { 0.0 };
        let spread: Vec<String> = summary.partitions.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        println!(
            "Produced {} records ({} bytes) to {} in {secs:.2} s ({rate:.0} records/s); partitions {}",
            summary.records,
            summary.bytes,
            summary.topic,
            if spread.is_empty() { "-".to_string() } else { spread.join(", ") }
        );
        if summary.failed > 0 {
            println!("{} records failed (see the errors above)", summary.failed);
        }
    }
    Ok(tally.exit)
}

fn usage(message: &str) -> Exit {
    eprintln!("error: {message}");
    Exit::Usage
}
