//! `tributary status|stop|logs|destroy`: the local platform a `tributary
//! start` runs on a data directory, found through the files it keeps there
//! (`local.rs`): the broker's lock says whether something runs, the run file
//! says what (pid, services, URLs), the log says what it did. A local
//! cluster (`start --nodes`) is one supervising process holding the lock
//! and one process per node, each named in the run file.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::cli::{Exit, parse_duration};
use crate::local::{self, DirState, RunFile, Service, Settings};
use crate::logging;
use crate::output::Format;
use crate::start::{DataDirArg, accepts};
use crate::table::Table;

const STATUS_HELP: &str = "\
Reads <data-dir>/tributary-run.json and checks that each service accepts a TCP connection on
its port. Without a running platform it lists the services on the ports the data directory is
set up for, all down.

Exit status: 0 when every service of the platform is up; 1 when any is down or nothing runs
(so `tributary status && ...` waits for nothing that is not there); 2 for invalid arguments.

JSON output (-o json): {\"data_dir\": str, \"running\": bool, \"pid\": int|null, \"detached\": bool|null,
\"uptime_s\": int|null, \"log_file\": str, \"services\": [{\"service\": str, \"state\": \"up\"|\"down\",
\"url\": str, \"pid\": int|null, \"uptime_s\": int|null}]}; each node of a local cluster (`start --nodes`)
is a broker entry with \"node_id\": int and its own pid.

Examples:
  tributary status
  tributary status --data-dir /tmp/dev -o json";

const STOP_HELP: &str = "\
Sends SIGTERM to the platform running on the data directory (detached or in another terminal)
and waits until it has stopped cleanly: every service stopped, every log flushed.

Exit status: 0 when it stopped, or when nothing was running (\"not running\"); 1 when it was
still running after --timeout (then --force kills it) or the data directory is held by a process
that is not a `tributary start`.

JSON output (-o json): {\"data_dir\": str, \"was_running\": bool, \"pid\": int|null,
\"stopped\": bool, \"killed\": bool, \"seconds\": float}

Examples:
  tributary stop
  tributary stop --data-dir /tmp/dev --timeout 10s --force";

const LOGS_HELP: &str = "\
Prints <data-dir>/logs/tributary.log, the log of the platform `tributary start` runs on that data
directory (detached or not). Each line names the service that wrote it; give one to see only its
lines (lines of the process as a whole are tagged `tributary`). The nodes of a local cluster
(`start --nodes`) write theirs to the same log tagged broker-1, broker-2, ...: `broker` shows them all.

Exit status: 0; 4 when the data directory has no log yet.

JSON output (-o json): one object per log line,
  {\"time\": str|null, \"level\": str|null, \"service\": str|null, \"message\": str}
time and level are null on a continuation line, which keeps the service of the line before it;
-o yaml prints the same as one YAML document per line.

Examples:
  tributary logs
  tributary logs broker -n 50
  tributary logs schema-registry -f
  tributary logs -o json | jq 'select(.level == \"WARN\")'";

const DESTROY_HELP: &str = "\
Stops the platform if it runs (SIGTERM, SIGKILL after 30 s), then deletes the data directory:
every topic, schema and setting in it. Asks first; without a terminal to ask on, --yes is needed.
A directory that does not look like a Tributary data directory is never deleted.

Exit status: 0 when deleted (or there was nothing to delete); 1 when it could not be deleted or
you answered no; 2 without --yes and without a terminal.

JSON output:
  {\"data_dir\": str, \"stopped_pid\": int|null, \"deleted\": bool}

Examples:
  tributary destroy
  tributary destroy --data-dir /tmp/dev --yes";

/// Flags of `tributary status`.
#[derive(Debug, Args)]
#[command(after_long_help = STATUS_HELP)]
pub struct StatusArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
}

/// Flags of `tributary stop`.
#[derive(Debug, Args)]
#[command(after_long_help = STOP_HELP)]
pub struct StopArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Longest wait for a clean stop.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    timeout: Duration,
    /// Kill the platform (SIGKILL) if it has not stopped within --timeout.
    #[arg(long)]
    force: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
}

/// Flags of `tributary logs`.
#[derive(Debug, Args)]
#[command(after_long_help = LOGS_HELP)]
pub struct LogsArgs {
    /// Only this service's lines.
    #[arg(value_enum)]
    service: Option<Service>,
    /// Keep printing lines as they are written, until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines (of the service, when one is given).
    #[arg(short = 'n', long, value_name = "N")]
    lines: Option<usize>,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Output format: the lines as written, or one JSON object (YAML document) per line.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
}

/// Flags of `tributary destroy`.
#[derive(Debug, Args)]
#[command(after_long_help = DESTROY_HELP)]
pub struct DestroyArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Delete without asking.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Format,
}

// ---------------------------------------------------------------- status

#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    data_dir: String,
    running: bool,
    pid: Option<u32>,
    detached: Option<bool>,
    uptime_s: Option<u64>,
    log_file: String,
    services: &'a [ServiceStatus],
}

#[derive(Debug, Serialize)]
struct ServiceStatus {
    service: Service,
    /// A node of a local cluster (`start --nodes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<i32>,
    state: &'static str,
    url: String,
    pid: Option<u32>,
    uptime_s: Option<u64>,
}

/// Runs `tributary status`.
pub fn status(args: StatusArgs) -> ExitCode {
    let dir = args.data_dir.absolute();
    let state = local::dir_state(&dir);
    let run = match &state {
        DirState::InUse(Some(run)) => Some(run.clone()),
        _ => None,
    };
    let uptime_s = run.as_ref().map(|r| local::now_ms().saturating_sub(r.started_at_ms) / 1000);
    let services: Vec<ServiceStatus> = match &run {
        Some(run) => run
            .services
            .iter()
            .map(|s| {
                let up = accepts(&s.host, s.port);
                ServiceStatus {
                    service: s.service,
                    node_id: s.node_id,
                    state: if up { "up" } else { "down" },
                    url: s.url.clone(),
                    pid: up.then_some(s.pid.unwrap_or(run.pid)),
                    uptime_s: if up { uptime_s } else { None },
                }
            })
            .collect(),
        None => {
            let settings = Settings::load(&dir).ok().flatten().unwrap_or_default();
            let down = |service: Service, node_id: Option<i32>, port: u16| ServiceStatus {
                service,
                node_id,
                state: "down",
                url: service.url(&settings.host, port),
                pid: None,
                uptime_s: None,
            };
            let mut services: Vec<ServiceStatus> = if settings.nodes > 1 {
                settings
                    .node_ports()
                    .iter()
                    .zip(1..)
                    .map(|(&(kafka, _), id)| down(Service::Broker, Some(id), kafka))
                    .collect()
            } else {
                vec![down(Service::Broker, None, settings.kafka_port)]
            };
            services.push(down(Service::SchemaRegistry, None, settings.schema_registry_port));
            services.push(down(Service::RestProxy, None, settings.rest_proxy_port));
            services
        }
    };
    let all_up = run.is_some() && services.iter().all(|s| s.state == "up");
    let log_file = local::log_path(&dir).display().to_string();
    let value = StatusJson {
        data_dir: dir.display().to_string(),
        running: run.is_some(),
        pid: run.as_ref().map(|r| r.pid),
        detached: run.as_ref().map(|r| r.detached),
        uptime_s,
        log_file: log_file.clone(),
        services: &services,
    };
    if !args.output.print(&value) {
        let headline = match (&state, &run) {
            (_, Some(run)) => format!(
                "Tributary on {}: {} (pid {}, up {}{})",
                dir.display(),
                if all_up { "running" } else { "running, not every service answers" },
                run.pid,
                local::human_duration(local::now_ms().saturating_sub(run.started_at_ms)),
                if run.detached { ", in the background" } else { "" }
            ),
            (DirState::InUse(None), None) => format!(
                "Tributary on {}: in use by a process that wrote no run file (starting, or a `tributary broker`)",
                dir.display()
            ),
            _ => format!("Tributary on {}: not running", dir.display()),
        };
        let mut table = Table::new(&["SERVICE", "STATE", "URL", "PID", "UPTIME"]);
        for s in &services {
            table.row(vec![
                crate::start::label(s.service, s.node_id),
                s.state.to_string(),
                s.url.clone(),
                s.pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
                s.uptime_s.map_or_else(|| "-".to_string(), |u| local::human_duration(u * 1000)),
            ]);
        }
        print!("{headline}\n\n{}", table.render());
        if run.is_some() {
            println!("\nLog: {log_file}");
        } else {
            println!("\n`tributary start{}` starts it.", args.data_dir.hint());
        }
    }
    if all_up { Exit::Success.code() } else { Exit::Failed.code() }
}

// ---------------------------------------------------------------- stop

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// Nothing was running.
    NotRunning,
    /// It stopped on SIGTERM.
    Clean,
    /// It was killed after the timeout.
    Killed,
}

/// Stops the platform on `dir`: SIGTERM, then waits for the broker's lock
/// to be released (the process is gone, or has closed every log).
fn stop_platform(dir: &Path, timeout: Duration, force: bool) -> Result<(Stopped, Option<u32>), String> {
    let run = match local::dir_state(dir) {
        DirState::Free => {
            // A run file left by a platform that was killed describes nothing, unless a node of
            // its cluster still runs (it stops by itself soon after its platform is gone).
            if let Ok(Some(run)) = RunFile::load(dir) {
                stop_nodes(&run, timeout);
            }
            let _ = std::fs::remove_file(dir.join(local::RUN_FILE));
            return Ok((Stopped::NotRunning, None));
        }
        DirState::InUse(None) => {
            return Err(format!(
                "{} is in use by a process that wrote no run file (a `tributary broker`, or a platform still \
                 starting): stop that process yourself, or try again in a moment",
                dir.display()
            ));
        }
        DirState::InUse(Some(run)) => run,
    };
    let pid = run.pid;
    local::signal(pid, rustix::process::Signal::TERM)
        .map_err(|e| format!("cannot signal the platform's process {pid}: {e}"))?;
    if wait_until_free(dir, pid, timeout) {
        stop_nodes(&run, timeout);
        return Ok((Stopped::Clean, Some(pid)));
    }
    if !force {
        return Err(format!(
            "the platform (pid {pid}) is still running {} after SIGTERM; `tributary stop --force` kills it",
            local::human_duration(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        ));
    }
    local::signal(pid, rustix::process::Signal::KILL).map_err(|e| format!("cannot kill process {pid}: {e}"))?;
    if wait_until_free(dir, pid, Duration::from_secs(10)) {
        stop_nodes(&run, Duration::from_secs(10));
        RunFile::remove_if_owned(dir, pid);
        Ok((Stopped::Killed, Some(pid)))
    } else {
        Err(format!("process {pid} was sent SIGKILL and still holds {}", dir.display()))
    }
}

/// The nodes of a local cluster still running after their platform stopped
/// (normally none: the platform waits for them): SIGTERM, then SIGKILL
/// after `timeout`; each is gone once its directory's lock is free.
fn stop_nodes(run: &RunFile, timeout: Duration) {
    for (dir, pid) in crate::nodes::nodes_still_running(run) {
        let _ = local::signal(pid, rustix::process::Signal::TERM);
        if !wait_until_free(&dir, pid, timeout) {
            let _ = local::signal(pid, rustix::process::Signal::KILL);
            wait_until_free(&dir, pid, Duration::from_secs(10));
        }
    }
}

/// Waits until the data directory's lock is free (or `pid` is gone, for a
/// process that is not a platform any more).
fn wait_until_free(dir: &Path, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !local::lock_held(dir) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(if local::pid_alive(pid) { 25 } else { 5 }));
    }
}

#[derive(Debug, Serialize)]
struct StopJson {
    data_dir: String,
    was_running: bool,
    pid: Option<u32>,
    stopped: bool,
    killed: bool,
    seconds: f64,
}

/// Runs `tributary stop`.
pub fn stop(args: StopArgs) -> ExitCode {
    let dir = args.data_dir.absolute();
    let started = Instant::now();
    let (stopped, pid) = match stop_platform(&dir, args.timeout, args.force) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed.code();
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let value = StopJson {
        data_dir: dir.display().to_string(),
        was_running: stopped != Stopped::NotRunning,
        pid,
        stopped: true,
        killed: stopped == Stopped::Killed,
        seconds: (seconds * 1000.0).round() / 1000.0,
    };
    if !args.output.print(&value) {
        match (stopped, pid) {
            (Stopped::NotRunning, _) => println!("Tributary is not running on {}", dir.display()),
            (Stopped::Clean, Some(pid)) => println!("Tributary stopped (pid {pid}, {seconds:.1} s)"),
            (_, pid) => println!(
                "Tributary killed (pid {}) after {} without stopping on SIGTERM",
                pid.map_or_else(|| "?".to_string(), |p| p.to_string()),
                local::human_duration(u64::try_from(args.timeout.as_millis()).unwrap_or(0))
            ),
        }
    }
    Exit::Success.code()
}

// ---------------------------------------------------------------- logs

/// Runs `tributary logs`.
pub fn logs(args: LogsArgs) -> ExitCode {
    let dir = args.data_dir.absolute();
    let path = local::log_path(&dir);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("error: no log at {}: `tributary start{}` writes one", path.display(), args.data_dir.hint());
            return Exit::NotFound.code();
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return Exit::Failed.code();
        }
    };
    let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut filter = LineFilter::new(args.service);
    // Each kept line with the service it belongs to (a continuation line's
    // is that of the tagged line before it).
    let mut lines: Vec<(Option<String>, String)> = Vec::new();
    for line in String::from_utf8_lossy(&text[..end]).lines() {
        if filter.keep(line) {
            lines.push((filter.current.clone(), line.to_string()));
        }
    }
    let skip = args.lines.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = io::stdout().lock();
    for (service, line) in &lines[skip..] {
        if write_log_line(&mut out, line, service.as_deref(), args.output).is_err() {
            return Exit::Success.code();
        }
    }
    let _ = out.flush();
    drop(out);
    if args.follow {
        let mut follower = logging::Follower::at(&path, end as u64);
        loop {
            let mut out = io::stdout().lock();
            for line in follower.read_lines() {
                if filter.keep(&line)
                    && write_log_line(&mut out, &line, filter.current.as_deref(), args.output).is_err()
                {
                    return Exit::Success.code();
                }
            }
            if out.flush().is_err() {
                return Exit::Success.code();
            }
            drop(out);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Exit::Success.code()
}

/// One log line as written, or as `{"time", "level", "service", "message"}`
/// (time and level null on an untagged continuation line, whose service is
/// that of the line before it).
fn write_log_line(out: &mut impl Write, line: &str, service: Option<&str>, format: Format) -> io::Result<()> {
    if format == Format::Table {
        return writeln!(out, "{line}");
    }
    let (time, level, message) = match logging::line_message(line) {
        Some(message) => {
            let mut words = line.split_whitespace();
            (words.next(), words.next(), message)
        }
        None => (None, None, line),
    };
    let record = serde_json::json!({
        "time": time, "level": level, "service": service, "message": message,
    });
    let text = match format {
        Format::Yaml => crate::output::to_yaml(&record).map(|y| format!("---\n{y}")),
        _ => serde_json::to_string(&record).map(|j| j + "\n"),
    };
    out.write_all(text.map_err(io::Error::other)?.as_bytes())
}

/// Keeps one service's lines; an untagged line (a continuation, an
/// `error:` line) goes with the tagged line before it.
#[derive(Debug)]
struct LineFilter {
    service: Option<Service>,
    current: Option<String>,
}

impl LineFilter {
    fn new(service: Option<Service>) -> LineFilter {
        LineFilter { service, current: None }
    }

    fn keep(&mut self, line: &str) -> bool {
        if let Some(s) = logging::line_service(line) {
            self.current = Some(s.to_string());
        }
        match self.service {
            None => true,
            Some(wanted) => self.current.as_deref().is_some_and(|tag| logging::tag_is(tag, wanted)),
        }
    }
}

// ---------------------------------------------------------------- destroy

/// Runs `tributary destroy`.
pub fn destroy(args: DestroyArgs) -> ExitCode {
    let dir = args.data_dir.absolute();
    let report = |stopped_pid: Option<u32>, deleted: bool, sentence: &str| {
        let json = serde_json::json!({
            "data_dir": dir.display().to_string(), "stopped_pid": stopped_pid, "deleted": deleted,
        });
        if !args.output.print(&json) {
            println!("{sentence}");
        }
    };
    if !dir.exists() {
        report(None, false, &format!("Nothing to destroy: {} does not exist", dir.display()));
        return Exit::Success.code();
    }
    if !local::looks_like_data_dir(&dir) {
        eprintln!(
            "error: refusing to delete {}: it does not look like a Tributary data directory (no meta.properties, \
             tributary.properties or .lock in it)",
            dir.display()
        );
        return Exit::Failed.code();
    }
    if !args.yes {
        if !io::stdin().is_terminal() {
            eprintln!(
                "error: refusing to delete {} without confirmation: standard input is not a terminal; pass --yes",
                dir.display()
            );
            return Exit::Usage.code();
        }
        eprint!("Delete {} and everything in it? [y/N] ", dir.display());
        let _ = io::stderr().flush();
        let mut answer = String::new();
        if io::stdin().lock().read_line(&mut answer).is_err()
            || !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        {
            eprintln!("Nothing deleted.");
            return Exit::Failed.code();
        }
    }
    let stopped_pid = match stop_platform(&dir, Duration::from_secs(30), true) {
        Ok((Stopped::NotRunning, _)) => None,
        Ok((_, pid)) => {
            if args.output == Format::Table {
                println!("Stopped the platform (pid {})", pid.unwrap_or_default());
            }
            pid
        }
        Err(e) => {
            eprintln!("error: {e}; nothing deleted");
            return Exit::Failed.code();
        }
    };
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {
            report(stopped_pid, true, &format!("Deleted {}", dir.display()));
            Exit::Success.code()
        }
        Err(e) => {
            eprintln!("error: cannot delete {}: {e}", dir.display());
            Exit::Failed.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_keeps_one_service_and_its_continuation_lines() {
        let lines = [
            "2026-01-01T00:00:00Z  INFO [tributary] hello",
            "2026-01-01T00:00:00Z  INFO [broker] Starting broker",
            "  a continuation of the broker's line",
            "2026-01-01T00:00:00Z  WARN [schema-registry] slow",
            "error: the schema registry did not start",
            "2026-01-01T00:00:00Z  INFO [broker] broker is up at 127.0.0.1:9092 (3 ms)",
        ];
        let mut f = LineFilter::new(Some(Service::Broker));
        let kept: Vec<&str> = lines.iter().copied().filter(|l| f.keep(l)).collect();
        assert_eq!(kept, vec![lines[1], lines[2], lines[5]]);
        let mut f = LineFilter::new(Some(Service::SchemaRegistry));
        assert_eq!(lines.iter().filter(|l| f.keep(l)).count(), 2);
        let mut f = LineFilter::new(None);
        assert_eq!(lines.iter().filter(|l| f.keep(l)).count(), lines.len());
    }

    #[test]
    fn stopping_a_directory_nothing_runs_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(local::RUN_FILE), "{}").expect("stale run file");
        let r = stop_platform(dir.path(), Duration::from_millis(10), false);
        assert_eq!(r, Ok((Stopped::NotRunning, None)));
        assert!(!dir.path().join(local::RUN_FILE).exists(), "a stale run file is cleaned up");
    }
}
