//! The platform's log lines: each names the service that wrote it, so
//! `tributary logs broker` can pick out one service's lines.
//!
//! ```text
//! 2026-11-22T14:18:03.512345Z  INFO [broker] listening for Kafka clients listener=PLAINTEXT address=127.0.0.1:9092
//! 2026-11-22T14:18:03.530001Z  INFO [schema-registry] schema registry listening on http://127.0.0.1:8081 ...
//! ```
//!
//! The service comes from the event's target: the crates each service is
//! built from map to it (`tributary_broker`, `tributary_log`, ... →
//! `broker`), and the startup code logs with the service's name as target.
//! Anything else is `tributary` (the process itself). The nodes of a local
//! cluster (`start --nodes`) are processes of their own writing to the same
//! log, every line tagged with the node's name (`[broker-2]`).

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::local::Service;

/// A log larger than this at start is moved to `tributary.log.1` (replacing
/// the one before), so the log of a platform restarted for months stays bounded.
const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// The service a log event with this target belongs to.
pub fn service_of(target: &str) -> &'static str {
    let krate = target.split("::").next().unwrap_or(target);
    match krate {
        "broker" | "tributary_broker" | "tributary_log" | "tributary_metadata" | "tributary_group"
        | "tributary_config" | "tributary_record" | "tributary_protocol" => "broker",
        "schema-registry" | "tributary_schema_registry" | "tributary_schema" | "tributary_registry_client" => {
            "schema-registry"
        }
        "rest-proxy" | "tributary_rest_proxy" => "rest-proxy",
        _ => "tributary",
    }
}

/// The service named by a log line this module wrote, or `None` for a line
/// of another shape (a continuation line, a message printed as it is).
pub fn line_service(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let time = words.next()?;
    let _level = words.next()?;
    let tag = words.next()?;
    if !time.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    tag.strip_prefix('[')?.strip_suffix(']')
}

/// The message of a line this module wrote (what follows the service tag).
pub fn line_message(line: &str) -> Option<&str> {
    let service = line_service(line)?;
    let tag = format!("[{service}] ");
    line.find(&tag).map(|at| &line[at + tag.len()..])
}

/// Whether a line tagged `tag` belongs to `service`: its own name, or one
/// of its nodes (`broker-2` is the broker's).
pub fn tag_is(tag: &str, service: Service) -> bool {
    tag.strip_prefix(service.name()).is_some_and(|rest| rest.is_empty() || node_suffix(rest).is_some())
}

/// `-<id>` → id.
fn node_suffix(rest: &str) -> Option<i32> {
    rest.strip_prefix('-')?.parse().ok()
}

/// Formats an event as `<time> <LEVEL> [<service>] <message> <fields>`;
/// with a tag, every line is that tag's (a cluster node's process).
#[derive(Debug, Clone, Copy)]
pub struct ServiceFormat {
    tag: Option<&'static str>,
}

impl<S, N> FormatEvent<S, N> for ServiceFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        let meta = event.metadata();
        let tag = self.tag.unwrap_or_else(|| service_of(meta.target()));
        write!(writer, " {:>5} [{tag}] ", meta.level().as_str())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// openraft's lines about each failed replication attempt (four per retry
/// of an unreachable peer, warnings and errors, several retries a second
/// for as long as a node is down) are off: the quorum logs once when a
/// peer becomes unreachable and once when it answers again
/// (`tributary_quorum::net::reachability`). `RUST_LOG` naming these
/// targets turns them back on.
const QUIET_BY_DEFAULT: &str = "openraft::replication=off,openraft::engine::handler::replication_handler=error";

/// The filter every log of the binary uses: `RUST_LOG` (default `info`)
/// after [`QUIET_BY_DEFAULT`].
pub fn filter() -> tracing_subscriber::EnvFilter {
    filter_for(std::env::var("RUST_LOG").ok().as_deref())
}

/// [`QUIET_BY_DEFAULT`], then `RUST_LOG` (default `info`; an invalid
/// value counts as unset).
fn filter_for(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let user = rust_log.map(str::trim).filter(|v| !v.is_empty()).unwrap_or("info");
    tracing_subscriber::EnvFilter::try_new(format!("{QUIET_BY_DEFAULT},{user}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{QUIET_BY_DEFAULT},info")))
}

/// Logging of a platform in the foreground: everything (`RUST_LOG`, default
/// info) to the log file, warnings and errors to stderr as well.
pub fn init_foreground(log: File) {
    let writer = Mutex::new(log).and(std::io::stderr.with_max_level(tracing::Level::WARN));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .event_format(ServiceFormat { tag: None })
        .with_writer(writer)
        .try_init();
}

/// Logging of a detached platform: stderr, which is the log file.
pub fn init_detached() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .event_format(ServiceFormat { tag: None })
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logging of one node of a local cluster (`tributary broker --log-tag
/// broker-2`, which `start --nodes` runs): stderr, which is the platform's
/// log, every line tagged with the node's name.
pub fn init_node(tag: &str) {
    let tag: &'static str = Box::leak(tag.to_string().into_boxed_str());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .event_format(ServiceFormat { tag: Some(tag) })
        .with_writer(std::io::stderr)
        .try_init();
}

/// Opens the platform's log for appending (creating its folder), after
/// moving it aside if it grew past 64 MiB.
pub fn open_log(path: &Path) -> Result<File, String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create the log folder {}: {e}", parent.display()))?;
    }
    if fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = fs::rename(path, PathBuf::from(old));
    }
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the log {}: {e}", path.display()))
}

/// Reads the lines a file gains, from a position on: for `start --detach`
/// watching its platform come up and for `tributary logs -f`.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    position: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `path` from byte `position`.
    pub fn at(path: &Path, position: u64) -> Follower {
        Follower { path: path.to_path_buf(), position, partial: Vec::new() }
    }

    /// The complete lines written since the last call (a line still being
    /// written waits for its newline). A file that shrank (replaced or
    /// truncated) is read again from its start.
    pub fn read_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.position {
            self.position = 0;
            self.partial.clear();
        }
        if len == self.position || file.seek(SeekFrom::Start(self.position)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.take(len - self.position).read_to_end(&mut bytes) else {
            return Vec::new();
        };
        self.position += n as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete).lines().map(str::to_string).collect()
    }
}

/// A startup step, as the platform logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `Starting <service>` or `Starting <service>-<node>`.
    Starting(Service, Option<i32>),
    /// `<service>[-<node>] is up at <url> (<ms> ms)`.
    Up {
        /// Which.
        service: Service,
        /// Which node of a local cluster.
        node: Option<i32>,
        /// Where.
        url: String,
        /// How long its start took.
        ms: u128,
    },
}

impl Progress {
    /// The step a log line reports, if it reports one.
    pub fn parse(line: &str) -> Option<Progress> {
        let service = Service::ALL.into_iter().find(|s| Some(s.name()) == line_service(line))?;
        let message = line_message(line)?.trim_end();
        let (name, rest) = message.split_once(' ').unwrap_or((message, ""));
        if name == "Starting" {
            return match rest.strip_prefix(service.name())? {
                "" => Some(Progress::Starting(service, None)),
                node => Some(Progress::Starting(service, Some(node_suffix(node)?))),
            };
        }
        let node = match name.strip_prefix(service.name())? {
            "" => None,
            node => Some(node_suffix(node)?),
        };
        let (url, ms) = rest.strip_prefix("is up at ")?.strip_suffix(" ms)")?.rsplit_once(" (")?;
        Some(Progress::Up { service, node, url: url.to_string(), ms: ms.parse().ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_services() {
        assert_eq!(service_of("tributary_broker::server"), "broker");
        assert_eq!(service_of("tributary_log"), "broker");
        assert_eq!(service_of("tributary_schema_registry::election"), "schema-registry");
        assert_eq!(service_of("tributary_rest_proxy::v2::consumer"), "rest-proxy");
        assert_eq!(service_of("rest-proxy"), "rest-proxy");
        assert_eq!(service_of("tributary::start"), "tributary");
        assert_eq!(service_of("hyper::proto"), "tributary");
    }

    /// The lines each `(target, level)` event leaves under `RUST_LOG`.
    fn logged(rust_log: Option<&str>) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter_for(rust_log))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "openraft::replication", "retry-error");
            tracing::warn!(target: "openraft::replication", "retry-warning");
            tracing::warn!(target: "openraft::engine::handler::replication_handler", "progress-warning");
            tracing::error!(target: "openraft::engine::handler::replication_handler", "progress-error");
            tracing::info!(target: "openraft::engine::handler::vote_handler", "vote-changing");
            tracing::warn!(target: "tributary_quorum::net::reachability", "peer-unreachable");
        });
        String::from_utf8_lossy(&buffer.0.lock().expect("lock")).into_owned()
    }

    #[test]
    fn openraft_retry_lines_are_off_unless_asked_for() {
        for rust_log in [None, Some("info"), Some("not a = valid [filter")] {
            let text = logged(rust_log);
            assert!(!text.contains("retry-") && !text.contains("progress-warning"), "{rust_log:?}: {text}");
            for kept in ["progress-error", "vote-changing", "peer-unreachable"] {
                assert!(text.contains(kept), "{rust_log:?} lost {kept}: {text}");
            }
        }
        let asked = logged(Some("info,openraft::replication=warn"));
        assert!(asked.contains("retry-error") && asked.contains("retry-warning"), "{asked}");
    }

    #[test]
    fn lines_name_their_service() {
        let line = "2026-11-22T14:18:03.512345Z  INFO [broker] listening for Kafka clients address=127.0.0.1:9092";
        assert_eq!(line_service(line), Some("broker"));
        assert_eq!(line_message(line), Some("listening for Kafka clients address=127.0.0.1:9092"));
        assert_eq!(line_service("2026-11-22T14:18:03Z ERROR [rest-proxy] x"), Some("rest-proxy"));
        assert_eq!(line_service("error: cannot listen"), None);
        assert_eq!(line_service("    at src/main.rs:1"), None);
        assert_eq!(line_service(""), None);
    }

    #[test]
    fn progress_lines_parse() {
        let t = "2026-11-22T14:18:03.512345Z  INFO";
        assert_eq!(
            Progress::parse(&format!("{t} [schema-registry] Starting schema-registry")),
            Some(Progress::Starting(Service::SchemaRegistry, None))
        );
        assert_eq!(
            Progress::parse(&format!("{t} [broker] broker is up at 127.0.0.1:9092 (41 ms)")),
            Some(Progress::Up { service: Service::Broker, node: None, url: "127.0.0.1:9092".to_string(), ms: 41 })
        );
        assert_eq!(
            Progress::parse(&format!("{t} [broker] Starting broker-2")),
            Some(Progress::Starting(Service::Broker, Some(2)))
        );
        assert_eq!(
            Progress::parse(&format!("{t} [broker] broker-3 is up at 127.0.0.1:9096 (900 ms)")),
            Some(Progress::Up { service: Service::Broker, node: Some(3), url: "127.0.0.1:9096".to_string(), ms: 900 })
        );
        assert_eq!(Progress::parse(&format!("{t} [broker] Starting broker-x")), None);
        assert_eq!(Progress::parse(&format!("{t} [broker] brokers is up at x (1 ms)")), None);
        assert!(tag_is("broker", Service::Broker) && tag_is("broker-12", Service::Broker));
        assert!(!tag_is("brokers", Service::Broker) && !tag_is("broker-", Service::Broker));
        assert!(!tag_is("rest-proxy", Service::Broker));
        assert_eq!(Progress::parse(&format!("{t} [broker] Starting schema-registry")), None);
        assert_eq!(Progress::parse(&format!("{t} [broker] broker is up at x (soon)")), None);
        assert_eq!(Progress::parse("error: Starting broker"), None);
    }

    #[test]
    fn the_follower_returns_whole_lines_and_survives_truncation() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        let mut f = File::create(&path).expect("create");
        let mut follow = Follower::at(&path, 0);
        assert!(follow.read_lines().is_empty());
        f.write_all(b"one\ntw").expect("write");
        assert_eq!(follow.read_lines(), vec!["one"]);
        f.write_all(b"o\nthree\n").expect("write");
        assert_eq!(follow.read_lines(), vec!["two", "three"]);
        drop(f);
        fs::write(&path, b"new\n").expect("truncate");
        assert_eq!(follow.read_lines(), vec!["new"]);
        let mut missing = Follower::at(&dir.path().join("none"), 0);
        assert!(missing.read_lines().is_empty());
    }
}
