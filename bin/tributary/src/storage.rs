//! `tributary storage`: Kafka's `kafka-storage.sh` for a KRaft node's data
//! directory. `random-uuid` prints a new cluster id; `format` writes
//! `meta.properties` (node id and cluster id) into `log.dirs`, so the node
//! joins that cluster and refuses any other. A directory left unformatted
//! formats itself with the id the quorum agrees on at first start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tributary_broker::node::{DataDir, random_cluster_id, valid_cluster_id};
use tributary_config::BrokerConfig;

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
        tributary storage format -c server.properties -t $(tributary storage random-uuid) --ignore-formatted -o json")]
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
        StorageCommand::Format { config, cluster_id, ignore_formatted, output } => {
            match format(&config, &cluster_id, ignore_formatted) {
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

/// What `format` did.
struct Formatted {
    data_dir: PathBuf,
    node_id: i32,
    /// False when the directory was formatted already (and --ignore-formatted accepted it).
    formatted_now: bool,
    message: String,
}

fn format(config: &std::path::Path, cluster_id: &str, ignore_formatted: bool) -> Result<Formatted, String> {
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
    tributary_quorum::config::KraftConfig::from_properties(&config.properties).map_err(|e| e.0)?;
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
    data_dir
        .write_meta_properties(config.node_id, cluster_id)
        .map_err(|e| format!("cannot write {}/meta.properties: {e}", dir.display()))?;
    Ok(Formatted {
        message: format!("Formatted {} for cluster {cluster_id} as node {}", dir.display(), config.node_id),
        data_dir: dir,
        node_id: config.node_id,
        formatted_now: true,
    })
}
