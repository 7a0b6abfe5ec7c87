//! `tributary schema-registry`: a schema registry against any Kafka cluster,
//! configured with Confluent's keys (a properties file, `SCHEMA_REGISTRY_*`
//! variables, flags); and the registry `tributary start` runs in-process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tokio::net::TcpListener;
use tributary_schema_registry::{RegistryConfig, SchemaRegistry, StartError};

/// Flags of `tributary schema-registry`.
#[derive(Debug, Args)]
#[command(after_long_help = "Confluent's keys work in --config, as SCHEMA_REGISTRY_* variables \
    (SCHEMA_REGISTRY_KAFKASTORE_TOPIC sets kafkastore.topic) and with --override.\n\n\
    HTTP connections: a request head must arrive within header.read.timeout.ms (30000) of its first \
    byte; a connection making no progress for idle.timeout.ms (30000) is closed (no request, a body \
    that stopped arriving, a response not read); at server.connection.limit (1000) open connections \
    the registry stops accepting until one closes; shutdown.graceful.ms (5000) bounds how long requests \
    in flight may take at shutdown. 0 turns a limit off. A request head over max.request.header.size \
    (8192 bytes) gets 431.\n\n\
    Examples:\n  \
    tributary schema-registry --bootstrap-servers 127.0.0.1:9092 --listeners http://0.0.0.0:8081\n  \
    tributary schema-registry --config schema-registry.properties --override kafkastore.topic=_schemas_dev\n  \
    curl http://127.0.0.1:8081/subjects")]
pub struct RegistryArgs {
    /// Kafka bootstrap servers (kafkastore.bootstrap.servers).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_servers: Option<String>,
    /// Where to listen (listeners), e.g. http://0.0.0.0:8081.
    #[arg(long, value_name = "URL")]
    listeners: Option<String>,
    /// A schema-registry.properties file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Config key=value applied after the file and SCHEMA_REGISTRY_* variables (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output format of the start-up line (json and yaml: `started` and `stopped` events).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: crate::output::Format,
}

fn load(args: &RegistryArgs) -> Result<RegistryConfig, String> {
    let mut props = BTreeMap::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        props.extend(tributary_config::properties::parse_properties(&text));
    }
    for (name, value) in std::env::vars() {
        if let Some(key) = tributary_schema_registry::config::env_to_key(&name) {
            props.insert(key, value);
        }
    }
    for item in &args.overrides {
        let (k, v) = item.split_once('=').ok_or_else(|| format!("override {item:?} is not of the form key=value"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(b) = &args.bootstrap_servers {
        props.insert("kafkastore.bootstrap.servers".to_string(), b.clone());
    }
    if let Some(l) = &args.listeners {
        props.insert("listeners".to_string(), l.clone());
    }
    let (config, unknown) = RegistryConfig::from_properties(&props)?;
    for key in unknown {
        tracing::warn!(key = %key, "config key is not used by the schema registry");
    }
    Ok(config)
}

/// Runs `tributary schema-registry` until Ctrl-C or SIGTERM.
pub fn run(args: RegistryArgs) -> ExitCode {
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::runtime(crate::Threads::Many) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result: Result<(), String> = runtime.block_on(async move {
        let listener = tributary_schema_registry::bind(&config).await.map_err(|e| match e {
            StartError::Bind { addr, source } => format!(
                "cannot listen on {addr}: {source}. Pass another address with --listeners http://0.0.0.0:<port>"
            ),
            other => other.to_string(),
        })?;
        let stop = crate::wait_for_signal();
        let registry = SchemaRegistry::start(config, listener).await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", registry.local_addr());
        crate::output::announce_started(args.output, "schema-registry", "Schema registry", &url);
        stop.await;
        registry.shutdown().await;
        crate::output::announce_stopped(args.output, "schema-registry");
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds the port of the registry `tributary start` runs, before the broker starts.
pub async fn bind_embedded(
    host: &str,
    port: u16,
    http: tributary_http::Limits,
) -> Result<(RegistryConfig, TcpListener), String> {
    let config = RegistryConfig { listen_host: host.to_string(), listen_port: port, http, ..RegistryConfig::default() };
    let listener = tributary_schema_registry::bind(&config).await.map_err(|e| match e {
        StartError::Bind { addr, source } => {
            crate::start::port_error(crate::local::Service::SchemaRegistry, &addr, &source)
        }
        other => other.to_string(),
    })?;
    Ok((config, listener))
}

/// Starts the in-process registry against the local broker or cluster (a bootstrap list).
pub async fn start_embedded(
    mut config: RegistryConfig,
    listener: TcpListener,
    bootstrap: &str,
) -> Result<SchemaRegistry, String> {
    config.bootstrap = bootstrap.to_string();
    SchemaRegistry::start(config, listener).await.map_err(|e| format!("the schema registry did not start: {e}"))
}
