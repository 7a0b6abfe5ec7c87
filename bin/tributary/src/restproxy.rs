//! `tributary rest-proxy`: Confluent's REST Proxy API (v3) against any Kafka
//! cluster; and the REST proxy `tributary start` runs in-process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tributary_http::{Limits, limits};
use tributary_rest_proxy::{RestProxy, RestProxyConfig};

/// Flags of `tributary rest-proxy`.
#[derive(Debug, Args)]
#[command(after_long_help = "HTTP connections: a request head must arrive within --header-read-timeout-ms \
    of its first byte; a connection making no progress for --idle-timeout-ms (no request, a request body \
    that stopped arriving, a response not read) is closed, while time the proxy spends working (a long \
    poll, a streamed produce) never counts; at --server-connection-limit open connections the proxy \
    stops accepting until one closes. 0 turns a limit off. A request head over --max-request-header-size \
    gets 431.\n\n\
    Example:\n  tributary rest-proxy --bootstrap-servers 127.0.0.1:9092 --port 8082\n  \
    curl http://127.0.0.1:8082/v3/clusters")]
pub struct RestProxyArgs {
    /// Kafka bootstrap servers.
    #[arg(long, value_name = "HOST:PORT", env = "TRIBUTARY_BROKERS")]
    bootstrap_servers: String,
    /// Host to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8082)]
    port: u16,
    /// Longest wait for one Kafka operation, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    timeout_ms: u64,
    /// Close a v2 consumer instance idle this long (consumer.instance.timeout.ms).
    #[arg(long, default_value_t = 300_000, value_name = "MS")]
    consumer_instance_timeout_ms: u64,
    /// Longest time for a request head, from its first byte (0: no limit).
    #[arg(long, default_value_t = limits::DEFAULT_HEADER_READ_TIMEOUT_MS, value_name = "MS")]
    header_read_timeout_ms: u64,
    /// Close a connection that makes no progress this long (idle.timeout.ms; 0: never).
    #[arg(long, default_value_t = limits::DEFAULT_IDLE_TIMEOUT_MS, value_name = "MS")]
    idle_timeout_ms: u64,
    /// Connections served at once; more wait to be accepted (server.connection.limit; 0: no limit).
    #[arg(long, default_value_t = limits::DEFAULT_SERVER_CONNECTION_LIMIT, value_name = "COUNT")]
    server_connection_limit: u64,
    /// Largest request head, in bytes: a larger one gets 431 (max.request.header.size).
    #[arg(long, default_value_t = limits::DEFAULT_MAX_REQUEST_HEADER_SIZE, value_name = "BYTES")]
    max_request_header_size: usize,
    /// On shutdown, how long requests in flight may take to finish (shutdown.graceful.ms).
    #[arg(long, default_value_t = limits::DEFAULT_SHUTDOWN_GRACEFUL_MS, value_name = "MS")]
    shutdown_graceful_ms: u64,
    /// Schema registry for AVRO keys and values (schema.registry.url).
    #[arg(long, value_name = "URL", env = "TRIBUTARY_SCHEMA_REGISTRY_URL")]
    schema_registry_url: Option<String>,
    /// Output format of the start-up line (json and yaml: `started` and `stopped` events).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: crate::output::Format,
}

/// Runs `tributary rest-proxy` until Ctrl-C or SIGTERM.
pub fn run(args: RestProxyArgs) -> ExitCode {
    let mut config = RestProxyConfig::new(&args.bootstrap_servers);
    config.listen_host = args.host;
    config.listen_port = args.port;
    config.timeout = Duration::from_millis(args.timeout_ms.max(100));
    config.schema_registry_url = args.schema_registry_url;
    config.consumer_instance_timeout = Duration::from_millis(args.consumer_instance_timeout_ms.max(1_000));
    config.http = Limits {
        header_read_timeout: limits::timeout_from_ms(saturating_i64(args.header_read_timeout_ms)),
        idle_timeout: limits::timeout_from_ms(saturating_i64(args.idle_timeout_ms)),
        max_connections: limits::connections_from(saturating_i64(args.server_connection_limit)),
        shutdown_grace: Duration::from_millis(args.shutdown_graceful_ms),
        max_header_bytes: args.max_request_header_size.max(limits::MIN_REQUEST_HEADER_SIZE),
    };
    let runtime = match crate::runtime(crate::Threads::Many) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let output = args.output;
    let result: Result<(), String> = runtime.block_on(async move {
        let listener = tributary_rest_proxy::bind(&config)
            .await
            .map_err(|e| format!("{e}. Pass another port with --port <port> (0 picks a free one)"))?;
        let stop = crate::wait_for_signal();
        let proxy = RestProxy::start(config, listener).map_err(|e| e.to_string())?;
        let url = format!("http://{}", proxy.local_addr());
        crate::output::announce_started(output, "rest-proxy", "REST proxy", &url);
        stop.await;
        proxy.shutdown().await;
        crate::output::announce_stopped(output, "rest-proxy");
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

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Binds the port of the REST proxy `tributary start` runs, before the broker starts.
pub async fn bind_embedded(host: &str, port: u16, http: Limits) -> Result<(RestProxyConfig, TcpListener), String> {
    let mut config = RestProxyConfig::new("");
    config.listen_host = host.to_string();
    config.listen_port = port;
    config.http = http;
    let listener = tributary_rest_proxy::bind(&config)
        .await
        .map_err(|e| crate::start::port_error(crate::local::Service::RestProxy, &e.addr, &e.source))?;
    Ok((config, listener))
}

/// Starts the in-process REST proxy against the local broker or cluster (a bootstrap list), and the registry if it runs.
pub fn start_embedded(
    mut config: RestProxyConfig,
    listener: TcpListener,
    bootstrap: &str,
    schema_registry: Option<SocketAddr>,
) -> Result<RestProxy, String> {
    config.bootstrap = bootstrap.to_string();
    config.schema_registry_url = schema_registry.map(|a| format!("http://{a}"));
    RestProxy::start(config, listener).map_err(|e| format!("the REST proxy did not start: {e}"))
}
