//! What the client commands share: their connection flags and how a profile
//! fills them in, the client they connect with, exit statuses scripts can
//! rely on, and running a command to one.
//!
//! Exit statuses (the same for every command):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the command failed: the cluster or service refused it, or part of it failed |
//! | 2 | invalid arguments (clap's own usage errors are 2 as well) |
//! | 3 | a check answered no (`schema check-compatibility` found the schema incompatible) |
//! | 4 | not found: a topic, group, subject, schema or profile that does not exist |
//! | 5 | unreachable: no broker or service answered at the address, or not in time |

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tributary_client::{Client, ClientConfig, ClientError};

use crate::output::Format;
use crate::profile::Profile;

/// Where a client command looks for Kafka when nothing says otherwise.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Where a client command looks for the schema registry when nothing says otherwise.
pub const DEFAULT_SCHEMA_REGISTRY: &str = "http://127.0.0.1:8081";
/// Where a client command looks for the REST proxy when nothing says otherwise.
pub const DEFAULT_REST_PROXY: &str = "http://127.0.0.1:8082";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An exit status from the table in this module's overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    Success,
    /// 1.
    Failed,
    /// 2.
    Usage,
    /// 3.
    CheckFailed,
    /// 4.
    NotFound,
    /// 5.
    Unreachable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::CheckFailed => 3,
            Exit::NotFound => 4,
            Exit::Unreachable => 5,
        })
    }

    /// The status a Kafka client error ends a command with.
    pub fn of(error: &ClientError) -> Exit {
        match error {
            ClientError::NoBroker { .. }
            | ClientError::Connect { .. }
            | ClientError::Advertised { .. }
            | ClientError::Timeout { .. }
            | ClientError::Io { .. } => Exit::Unreachable,
            // UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND, UNKNOWN_TOPIC_ID.
            ClientError::Kafka(e) if matches!(e.code, 3 | 69 | 100) => Exit::NotFound,
            _ => Exit::Failed,
        }
    }

    /// This status, or `other` when this one is success: the first failure wins.
    pub fn or(self, other: Exit) -> Exit {
        if self == Exit::Success { other } else { self }
    }
}

/// Why a command cannot go on, and the status it exits with.
pub type Failure = (Exit, String);

/// `10s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("\"{s}\" is not a duration (write 10s, 500ms or 2m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("\"{s}\": unknown unit \"{unit}\" (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("the timeout must be above zero".to_string());
    }
    Ok(d)
}

/// Flags every client command has: the profile, the timeout, the output format.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Profile to take connection defaults from (else the current one; see `tributary profile`).
    #[arg(long, env = "TRIBUTARY_PROFILE", global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Longest wait for a connection or an answer (and for retries): 10s, 500ms, 2m [default: 10s].
    #[arg(long, value_parser = parse_duration, global = true, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t, global = true)]
    pub output: Format,
}

impl CommonArgs {
    /// The profile in effect, and the timeout with it applied.
    fn resolve(&self) -> Result<(Profile, Duration), Failure> {
        let profile = crate::profile::active(self.profile.as_deref())?;
        let timeout = match self.timeout {
            Some(t) => t,
            None => profile
                .timeout()
                .map_err(|e| (Exit::Usage, format!("the profile's timeout: {e}")))?
                .unwrap_or(DEFAULT_TIMEOUT),
        };
        Ok((profile, timeout))
    }
}

/// Connection flags of the commands that talk Kafka.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap addresses, comma-separated host:port [default: the profile's, else 127.0.0.1:9092].
    #[arg(
        long,
        visible_aliases = ["bootstrap", "bootstrap-server"],
        env = "TRIBUTARY_BROKERS",
        global = true,
        value_name = "HOST:PORT,..."
    )]
    brokers: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where to reach Kafka and how long to wait, after flags, environment and profile.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    /// Bootstrap addresses.
    pub brokers: String,
    /// Longest wait.
    pub timeout: Duration,
    /// The profile in effect, for the other settings a command needs (see [`registry_url`]).
    pub profile: Profile,
}

impl KafkaArgs {
    /// Fills in what the flags left out from the profile, then the defaults.
    pub fn resolve(&self) -> Result<KafkaTarget, Failure> {
        let (profile, timeout) = self.common.resolve()?;
        Ok(KafkaTarget {
            brokers: self.brokers.clone().or(profile.brokers.clone()).unwrap_or_else(|| DEFAULT_BROKERS.to_string()),
            timeout,
            profile,
        })
    }
}

/// Connection flags of the commands that talk to a schema registry.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Schema registry URL [default: the profile's, else http://127.0.0.1:8081].
    #[arg(long, env = "TRIBUTARY_SCHEMA_REGISTRY_URL", global = true, value_name = "URL")]
    schema_registry_url: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl RegistryArgs {
    /// The registry URL and timeout after flags, environment and profile.
    pub fn resolve(&self) -> Result<(String, Duration), Failure> {
        let (profile, timeout) = self.common.resolve()?;
        Ok((registry_url(self.schema_registry_url.as_deref(), &profile), timeout))
    }
}

/// The schema registry URL: the `--schema-registry-url` flag (or its
/// environment variable `TRIBUTARY_SCHEMA_REGISTRY_URL`, which clap reads
/// into the flag), else the profile's, else the default.
pub fn registry_url(flag: Option<&str>, profile: &Profile) -> String {
    flag.map(str::to_string)
        .or_else(|| profile.schema_registry_url.clone())
        .unwrap_or_else(|| DEFAULT_SCHEMA_REGISTRY.to_string())
}

/// The command line's client settings for `target`.
pub fn client_config(target: &KafkaTarget) -> ClientConfig {
    let mut config = ClientConfig::new(&target.brokers);
    config.client_id = "tributary-cli".to_string();
    config.timeout = target.timeout;
    config
}

/// Connects the command line's client to `target`.
pub async fn connect(target: &KafkaTarget) -> Result<Client, ClientError> {
    Client::connect(client_config(target)).await
}

/// Runs a Kafka command to its exit status. The command returns the status of
/// what it printed (a failure in part of it is reported on stderr as it
/// happens); an error is printed as `error: ...` and ends it with the status
/// of that error.
pub fn run<F: Future<Output = Result<Exit, ClientError>>>(
    args: &KafkaArgs,
    command: impl FnOnce(KafkaTarget, Format) -> F,
) -> ExitCode {
    let target = match args.resolve() {
        Ok(t) => t,
        Err((exit, message)) => {
            eprintln!("error: {message}");
            return exit.code();
        }
    };
    let runtime = match crate::runtime(crate::Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(command(target, args.common.output)) {
        Ok(exit) => exit.code(),
        Err(e) => {
            match &e {
                ClientError::NoBroker { .. } => {
                    eprintln!(
                        "error: {e} (`tributary start` runs one; set the address with --brokers, TRIBUTARY_BROKERS or a profile)"
                    )
                }
                _ => eprintln!("error: {e}"),
            }
            Exit::of(&e).code()
        }
    }
}

/// An error in JSON output: the Kafka error code and name when the broker gave one.
#[derive(serde::Serialize)]
pub struct ErrorJson {
    pub code: Option<i16>,
    pub name: Option<String>,
    pub message: String,
}

impl From<&ClientError> for ErrorJson {
    fn from(e: &ClientError) -> ErrorJson {
        let kafka = e.kafka();
        ErrorJson { code: kafka.map(|k| k.code), name: kafka.map(|k| k.name.clone()), message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_client::KafkaError;

    #[test]
    fn statuses_by_error() {
        let unreachable =
            ClientError::NoBroker { bootstrap: "127.0.0.1:1".to_string(), details: "refused".to_string() };
        assert_eq!(Exit::of(&unreachable), Exit::Unreachable);
        assert_eq!(Exit::of(&ClientError::Kafka(KafkaError::new(3, "x"))), Exit::NotFound);
        assert_eq!(Exit::of(&ClientError::Kafka(KafkaError::new(69, "x"))), Exit::NotFound);
        assert_eq!(Exit::of(&ClientError::Kafka(KafkaError::new(68, "x"))), Exit::Failed);
        assert_eq!(Exit::Success.or(Exit::NotFound).or(Exit::Failed), Exit::NotFound);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
