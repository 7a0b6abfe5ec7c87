//! `tributary storage`: Kafka's `kafka-storage.sh` for a KRaft node's data
//! directory. `random-uuid` prints a new cluster id; `format` writes
//! `meta.properties` (node id and cluster id) into `log.dirs`, so the node
//! joins that cluster and refuses any other. A directory left unformatted
//! formats itself with the id the quorum agrees on at first start.
//!
//! With dynamic voters (`controller.quorum.bootstrap.servers`, KIP-853) a
//! controller is formatted as Kafka's are: `--standalone` (a quorum of this
//! controller alone, to grow with AddRaftVoter), `--initial-controllers
//! id@host:port:dir,...` (the first voter set, the same on each of them) or
//! `--no-initial-controllers` (join a quorum that exists). The first voters
//! go to `initial-controllers.properties` beside `meta.properties`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tributary_broker::node::{DataDir, random_cluster_id, valid_cluster_id};
use tributary_config::BrokerConfig;
use tributary_quorum::config::{Endpoint, KraftConfig, QuorumVoters, parse_initial_controllers};

/// `tributary storage`.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    tributary storage random-uuid\n  \
    tributary storage format --config server.properties --cluster-id $(tributary storage random-uuid)")]
pub struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Print a new random cluster id.
    #[command(after_long_help = "Prints a 22-character base64url id (a random UUID, as kafka-storage.sh \
        random-uuid does); -o json prints {\"cluster_id\"}.\n\n\
        Examples:\n  \
        tributary storage random-uuid\n  \
        tributary storage random-uuid -o json")]
    RandomUuid {
        /// Output format (json and yaml: `{"cluster_id"}`).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Write meta.properties for a cluster id into the node's data directory (log.dirs).
    #[command(after_long_help = "Writes meta.properties (node.id, cluster.id) into log.dirs of a KRaft \
        node's server.properties, as kafka-storage.sh format does; the node then joins that cluster and \
        refuses any other. -o json prints {\"data_dir\", \"cluster_id\", \"node_id\", \"formatted\"}; \
        exit status 1 when the directory is formatted already (unless --ignore-formatted).\n\n\
        Examples:\n  \
        tributary storage format --config server.properties --cluster-id MkU3OEVBNTcwNTJENDM2Qg\n  \
        tributary storage format -c server.properties -t $(tributary storage random-uuid) --ignore-formatted -o json\n  \
        tributary storage format -c controller1.properties -t MkU3OEVBNTcwNTJENDM2Qg --standalone\n  \
        tributary storage format -c controller2.properties -t MkU3OEVBNTcwNTJENDM2Qg --no-initial-controllers\n  \
        tributary storage format -c c1.properties -t MkU3OEVBNTcwNTJENDM2Qg --initial-controllers 1@ctl-1:9093,2@ctl-2:9093,3@ctl-3:9093")]
    Format {
        /// The node's server.properties (process.roles, node.id, log.dirs).
        #[arg(long, short = 'c')]
        config: PathBuf,
        /// The cluster id (see `tributary storage random-uuid`).
        #[arg(long, short = 't')]
        cluster_id: String,
        /// Succeed when the directory is formatted already for this cluster and node.
        #[arg(long, short = 'g')]
        ignore_formatted: bool,
        /// Dynamic voters: start a quorum of this controller alone (its controller listener).
        #[arg(long, short = 's', conflicts_with_all = ["initial_controllers", "no_initial_controllers"])]
        standalone: bool,
        /// Dynamic voters: the first voters, `id@host:port:directory-id,...` (the directory id may be left out).
        #[arg(long, short = 'I', value_name = "VOTERS", conflicts_with = "no_initial_controllers")]
        initial_controllers: Option<String>,
        /// Dynamic voters: join a quorum that exists (added later with AddRaftVoter).
        #[arg(long, short = 'N')]
        no_initial_controllers: bool,
        /// Output format (json and yaml: `{"data_dir", "cluster_id", "node_id", "formatted"}`).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: crate::output::Format,
    },
}

/// Runs `tributary storage`.
pub fn run(args: StorageArgs) -> ExitCode {
    match args.command {
        StorageCommand::RandomUuid { output } => {
            let id = random_cluster_id();
            if !output.print(&serde_json::json!({ "cluster_id": id })) {
                println!("{id}");
            }
            ExitCode::SUCCESS
        }
        StorageCommand::Format {
            config,
            cluster_id,
            ignore_formatted,
            standalone,
            initial_controllers,
            no_initial_controllers,
            output,
        } => {
            let quorum = match (standalone, initial_controllers, no_initial_controllers) {
                (true, _, _) => InitialQuorum::Standalone,
                (_, Some(voters), _) => InitialQuorum::Controllers(voters),
                (_, _, true) => InitialQuorum::Join,
                _ => InitialQuorum::Unspecified,
            };
            match format(&config, &cluster_id, ignore_formatted, quorum) {
                Ok(done) => {
                    let value = serde_json::json!({
                        "data_dir": done.data_dir.display().to_string(),
                        "cluster_id": cluster_id,
                        "node_id": done.node_id,
                        "formatted": done.formatted_now,
                    });
                    if !output.print(&value) {
                        println!("{}", done.message);
                    }
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// How a dynamic quorum starts (Kafka's format flags).
enum InitialQuorum {
    /// No flag given.
    Unspecified,
    /// `--standalone`.
    Standalone,
    /// `--initial-controllers`.
    Controllers(String),
    /// `--no-initial-controllers`.
    Join,
}

/// The first voters to write, checked against the node's settings as
/// Kafka's storage tool checks them.
fn initial_voters(
    config: &BrokerConfig,
    kraft: &KraftConfig,
    quorum: InitialQuorum,
) -> Result<Option<BTreeMap<i32, String>>, String> {
    let dynamic = matches!(kraft.voters, QuorumVoters::Bootstrap(_));
    match quorum {
        InitialQuorum::Unspecified if dynamic && kraft.is_controller() => Err(
            "controller.quorum.voters is not set on this controller: give one of --standalone, --initial-controllers or --no-initial-controllers"
                .into(),
        ),
        InitialQuorum::Unspecified | InitialQuorum::Join => Ok(None),
        InitialQuorum::Standalone | InitialQuorum::Controllers(_) if !dynamic => Err(
            "--standalone and --initial-controllers are for dynamic voters: remove controller.quorum.voters and set controller.quorum.bootstrap.servers"
                .into(),
        ),
        InitialQuorum::Standalone | InitialQuorum::Controllers(_) if !kraft.is_controller() => {
            Err("--standalone and --initial-controllers are for controllers (process.roles has no controller)".into())
        }
        InitialQuorum::Standalone => {
            let listener = config
                .controller_listeners
                .iter()
                .find(|l| kraft.controller_listener_names.first() == Some(&l.name))
                .filter(|l| !l.host.is_empty() && l.port != 0)
                .ok_or_else(|| {
                    format!(
                        "--standalone needs the controller listener {} in listeners, with a host and a port",
                        kraft.controller_listener_names.join(",")
                    )
                })?;
            let endpoint = Endpoint { host: listener.host.clone(), port: listener.port };
            Ok(Some(BTreeMap::from([(kraft.node_id, endpoint.address())])))
        }
        InitialQuorum::Controllers(value) => {
            let voters = parse_initial_controllers(&value).map_err(|e| e.0)?;
            Ok(Some(voters.into_iter().map(|(id, e)| (id, e.address())).collect()))
        }
    }
}

/// What `format` did.
struct Formatted {
    data_dir: PathBuf,
    node_id: i32,
    /// False when the directory was formatted already (and --ignore-formatted accepted it).
    formatted_now: bool,
    message: String,
}

fn format(
    config: &std::path::Path,
    cluster_id: &str,
    ignore_formatted: bool,
    quorum: InitialQuorum,
) -> Result<Formatted, String> {
    if !valid_cluster_id(cluster_id) {
        return Err(format!(
            "cluster id {cluster_id:?} is not a 22-character base64url id; make one with `tributary storage random-uuid`"
        ));
    }
    let config = BrokerConfig::load(Some(config), std::iter::empty(), &[]).map_err(|e| e.to_string())?;
    if !config.properties.contains_key("process.roles") {
        return Err(
            "the config has no process.roles: storage format is for KRaft nodes (a node alone formats itself)".into()
        );
    }
    let kraft = KraftConfig::from_properties(&config.properties)
        .map_err(|e| e.0)?
        .ok_or_else(|| "the config has no process.roles".to_string())?;
    let initial = initial_voters(&config, &kraft, quorum)?;
    let dir: PathBuf = config.data_dir.clone();
    let data_dir = DataDir::open(&dir).map_err(|e| e.to_string())?;
    if let Some(meta) = data_dir.read_meta_properties().map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
        let same = meta.cluster_id.as_deref() == Some(cluster_id) && meta.node_id == Some(config.node_id);
        if same && ignore_formatted {
            return Ok(Formatted {
                message: format!("{} is formatted already for cluster {cluster_id}", dir.display()),
                data_dir: dir,
                node_id: config.node_id,
                formatted_now: false,
            });
        }
        return Err(format!(
            "log directory {} is already formatted (cluster {}, node {}); use --ignore-formatted to accept it as it is",
            dir.display(),
            meta.cluster_id.as_deref().unwrap_or("?"),
            meta.node_id.map_or("?".to_string(), |n| n.to_string())
        ));
    }
    if let Some(voters) = &initial {
        data_dir
            .write_initial_controllers(voters)
            .map_err(|e| format!("cannot write the initial controllers into {}: {e}", dir.display()))?;
    }
    data_dir
        .write_meta_properties(config.node_id, cluster_id)
        .map_err(|e| format!("cannot write {}/meta.properties: {e}", dir.display()))?;
    let voters = initial.map_or(String::new(), |v| {
        format!(
            " with initial controllers {}",
            v.iter().map(|(id, a)| format!("{id}@{a}")).collect::<Vec<_>>().join(",")
        )
    });
    Ok(Formatted {
        message: format!("Formatted {} for cluster {cluster_id} as node {}{voters}", dir.display(), config.node_id),
        data_dir: dir,
        node_id: config.node_id,
        formatted_now: true,
    })
}
