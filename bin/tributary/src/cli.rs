//! What the commands that talk to a Kafka cluster share: the client they
//! connect with, running one to an exit status, and one-line JSON output.

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use tributary_client::{Client, ClientConfig, ClientError};

/// Connects the command line's client to `bootstrap`.
pub async fn connect(bootstrap: &str, timeout: Duration) -> Result<Client, ClientError> {
    let mut config = ClientConfig::new(bootstrap);
    config.client_id = "tributary-cli".to_string();
    config.timeout = timeout;
    Client::connect(config).await
}

/// Runs a command to its exit status: `Ok(true)` is 0; `Ok(false)` (output
/// printed, part of it failed and already reported on stderr) and an error
/// (printed as `error: ...`) are 1.
pub fn run(command: impl Future<Output = Result<bool, ClientError>>) -> ExitCode {
    let runtime = match crate::runtime(crate::Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `value` as JSON on one line.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}

/// An error in JSON output: the Kafka error code and name when the broker gave one.
#[derive(Serialize)]
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
