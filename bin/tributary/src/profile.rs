//! Profiles: named sets of connection defaults (brokers, schema registry,
//! REST proxy, timeout) kept in one TOML file, kubectl-context style, so a
//! user switches clusters with `tributary profile use prod` instead of
//! repeating flags.
//!
//! Where a command takes a setting from, first match wins: its flag, its
//! environment variable (`TRIBUTARY_BROKERS`, ...), the profile named by
//! `--profile` / `TRIBUTARY_PROFILE`, the current profile, the built-in
//! default.
//!
//! The file is `$TRIBUTARY_CONFIG`, else `$XDG_CONFIG_HOME/tributary/config.toml`,
//! else `~/.config/tributary/config.toml`:
//!
//! ```toml
//! current = "prod"
//!
//! [profiles.prod]
//! brokers = "kafka-1:9092,kafka-2:9092"
//! schema_registry_url = "http://registry:8081"
//! timeout = "30s"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::cli::{Exit, Failure, parse_duration};
use crate::output::Format;
use crate::table::{Table, pairs};

/// One profile's settings; each is optional and falls through to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Kafka bootstrap addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Schema registry URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry_url: Option<String>,
    /// REST proxy URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_proxy_url: Option<String>,
    /// Longest wait, as written on the command line (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Profile {
    /// The timeout, checked.
    pub fn timeout(&self) -> Result<Option<Duration>, String> {
        self.timeout.as_deref().map(parse_duration).transpose()
    }
}

/// The profile file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the profile file is.
pub fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TRIBUTARY_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tributary").join("config.toml")
}

fn load(path: &Path) -> Result<ProfileFile, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            format!("cannot read the profile file {}: {e}. Fix it, or move it away to start afresh", path.display())
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileFile::default()),
        Err(e) => Err(format!("cannot read the profile file {}: {e}", path.display())),
    }
}

fn save(path: &Path, file: &ProfileFile) -> Result<(), String> {
    let text = toml::to_string_pretty(file).map_err(|e| format!("cannot write profiles: {e}"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Written beside and renamed over, so a crash leaves the old file or the new one.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The profile a command takes its defaults from: `name` (from `--profile` or
/// `TRIBUTARY_PROFILE`) when given, which must exist; else the current one,
/// if any. A profile file that cannot be read is an error only when a
/// profile was asked for by name.
pub fn active(name: Option<&str>) -> Result<Profile, Failure> {
    let path = config_path();
    match name {
        Some(name) => {
            let file = load(&path).map_err(|e| (Exit::Failed, e))?;
            file.profiles.get(name).cloned().ok_or_else(|| {
                (
                    Exit::NotFound,
                    format!(
                        "no profile named \"{name}\" in {}; `tributary profile list` shows them, \
                     `tributary profile create {name} --brokers HOST:PORT` makes one",
                        path.display()
                    ),
                )
            })
        }
        None => match load(&path) {
            Ok(file) => Ok(file.current.and_then(|c| file.profiles.get(&c).cloned()).unwrap_or_default()),
            Err(e) => {
                eprintln!("warning: {e}; using the built-in defaults");
                Ok(Profile::default())
            }
        },
    }
}

const PROFILE_HELP: &str = "\
A profile holds connection defaults for every command: --brokers, --schema-registry-url,
--rest-proxy-url and --timeout. A flag or environment variable still wins over the profile;
--profile NAME (or TRIBUTARY_PROFILE) picks a profile for one command.

The profiles live in $TRIBUTARY_CONFIG, else $XDG_CONFIG_HOME/tributary/config.toml, else
~/.config/tributary/config.toml.

Exit status: 0 on success; 1 when the file cannot be read or written; 2 for invalid arguments;
4 when the named profile does not exist.

Examples:
  tributary profile create prod --brokers kafka-1:9092,kafka-2:9092 --schema-registry-url http://registry:8081
  tributary profile list
  tributary profile use local
  tributary topic list --profile prod
  tributary profile delete prod";

/// `tributary profile ...`
#[derive(Debug, Args)]
#[command(after_long_help = PROFILE_HELP)]
pub struct ProfileArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t, global = true)]
    output: Format,
    #[command(subcommand)]
    command: ProfileCommand,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Create a profile (or replace one with --overwrite) and make it the current one.
    #[command(after_long_help = "JSON output:\n  {\"profile\": str, \"current\": bool, \"settings\": {str: str}}\n\n\
                                 Example:\n  tributary profile create local --brokers 127.0.0.1:9092")]
    Create {
        /// Profile name.
        name: String,
        #[command(flatten)]
        settings: SettingArgs,
        /// Replace a profile of the same name.
        #[arg(long)]
        overwrite: bool,
        /// Keep the current profile as it is.
        #[arg(long)]
        no_use: bool,
    },
    /// Change settings of a profile; an empty value (--brokers '') removes that setting.
    #[command(after_long_help = "JSON output:\n  {\"profile\": str, \"current\": bool, \"settings\": {str: str}}\n\n\
                                 Example:\n  tributary profile set prod --timeout 30s")]
    Set {
        /// Profile name.
        name: String,
        #[command(flatten)]
        settings: SettingArgs,
    },
    /// Make a profile the current one.
    #[command(after_long_help = "JSON output:\n  {\"current\": str}\n\nExample:\n  tributary profile use prod")]
    Use {
        /// Profile name.
        name: String,
    },
    /// List the profiles; the current one is marked.
    #[command(after_long_help = "JSON output:\n  {\"current\": str|null, \"profiles\": [{\"profile\": str, \
                                 \"current\": bool, \"settings\": {str: str}}]}\n\nExample:\n  tributary profile list")]
    List,
    /// Show one profile (the current one without a name).
    #[command(after_long_help = "JSON output:\n  {\"profile\": str, \"current\": bool, \"settings\": {str: str}}\n\n\
                                 Example:\n  tributary profile show prod")]
    Show {
        /// Profile name.
        name: Option<String>,
    },
    /// Delete a profile.
    #[command(after_long_help = "JSON output:\n  {\"profile\": str, \"deleted\": true}\n\nExample:\n  \
                                 tributary profile delete old")]
    Delete {
        /// Profile name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct SettingArgs {
    /// Kafka bootstrap addresses, comma-separated host:port.
    #[arg(long, value_name = "HOST:PORT,...")]
    brokers: Option<String>,
    /// Schema registry URL.
    #[arg(long, value_name = "URL")]
    schema_registry_url: Option<String>,
    /// REST proxy URL.
    #[arg(long, value_name = "URL")]
    rest_proxy_url: Option<String>,
    /// Longest wait for an answer: 10s, 500ms, 2m.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

impl SettingArgs {
    /// Applies the given settings to `profile`; an empty value clears one.
    fn apply(self, profile: &mut Profile) -> Result<(), String> {
        fn set(slot: &mut Option<String>, value: Option<String>) {
            if let Some(v) = value {
                *slot = Some(v).filter(|v| !v.trim().is_empty());
            }
        }
        if let Some(t) = self.timeout.as_deref().filter(|t| !t.trim().is_empty()) {
            parse_duration(t)?;
        }
        set(&mut profile.brokers, self.brokers);
        set(&mut profile.schema_registry_url, self.schema_registry_url);
        set(&mut profile.rest_proxy_url, self.rest_proxy_url);
        set(&mut profile.timeout, self.timeout);
        Ok(())
    }
}

#[derive(Serialize)]
struct ProfileJson<'a> {
    profile: &'a str,
    current: bool,
    settings: &'a Profile,
}

/// Runs a profile command.
pub fn run(args: ProfileArgs) -> ExitCode {
    match execute(args.command, args.output, &config_path()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((exit, message)) => {
            eprintln!("error: {message}");
            exit.code()
        }
    }
}

fn not_found(name: &str) -> Failure {
    (Exit::NotFound, format!("no profile named \"{name}\"; `tributary profile list` shows them"))
}

fn execute(command: ProfileCommand, format: Format, path: &Path) -> Result<(), Failure> {
    let failed = |e: String| (Exit::Failed, e);
    let mut file = load(path).map_err(failed)?;
    match command {
        ProfileCommand::Create { name, settings, overwrite, no_use } => {
            if name.trim().is_empty() {
                return Err((Exit::Usage, "a profile needs a name".to_string()));
            }
            if file.profiles.contains_key(&name) && !overwrite {
                return Err((
                    Exit::Failed,
                    format!(
                        "profile \"{name}\" exists; pass --overwrite to replace it, or change it with `profile set`"
                    ),
                ));
            }
            let mut profile = Profile::default();
            settings.apply(&mut profile).map_err(|e| (Exit::Usage, e))?;
            file.profiles.insert(name.clone(), profile);
            if !no_use {
                file.current = Some(name.clone());
            }
            save(path, &file).map_err(failed)?;
            show(&file, &name, format, "Created");
        }
        ProfileCommand::Set { name, settings } => {
            let profile = file.profiles.get_mut(&name).ok_or_else(|| not_found(&name))?;
            settings.apply(profile).map_err(|e| (Exit::Usage, e))?;
            save(path, &file).map_err(failed)?;
            show(&file, &name, format, "Updated");
        }
        ProfileCommand::Use { name } => {
            if !file.profiles.contains_key(&name) {
                return Err(not_found(&name));
            }
            file.current = Some(name.clone());
            save(path, &file).map_err(failed)?;
            if !format.print(&serde_json::json!({ "current": name })) {
                println!("Now using profile {name}");
            }
        }
        ProfileCommand::List => {
            let listed: Vec<ProfileJson<'_>> = file
                .profiles
                .iter()
                .map(|(name, p)| ProfileJson {
                    profile: name,
                    current: file.current.as_ref() == Some(name),
                    settings: p,
                })
                .collect();
            if !format.print(&serde_json::json!({ "current": file.current, "profiles": listed })) {
                let mut table = Table::new(&["CURRENT", "PROFILE", "BROKERS", "SCHEMA-REGISTRY", "TIMEOUT"]);
                for p in &listed {
                    table.row(vec![
                        if p.current { "*".to_string() } else { String::new() },
                        p.profile.to_string(),
                        p.settings.brokers.clone().unwrap_or_else(|| "-".to_string()),
                        p.settings.schema_registry_url.clone().unwrap_or_else(|| "-".to_string()),
                        p.settings.timeout.clone().unwrap_or_else(|| "-".to_string()),
                    ]);
                }
                print!("{}", table.render());
            }
        }
        ProfileCommand::Show { name } => {
            let name = match name.or_else(|| file.current.clone()) {
                Some(n) => n,
                None => {
                    return Err((
                        Exit::NotFound,
                        "no current profile; name one, or `tributary profile create NAME` to make one".to_string(),
                    ));
                }
            };
            if !file.profiles.contains_key(&name) {
                return Err(not_found(&name));
            }
            show(&file, &name, format, "");
        }
        ProfileCommand::Delete { name } => {
            if file.profiles.remove(&name).is_none() {
                return Err(not_found(&name));
            }
            if file.current.as_deref() == Some(name.as_str()) {
                file.current = None;
            }
            save(path, &file).map_err(failed)?;
            if !format.print(&serde_json::json!({ "profile": name, "deleted": true })) {
                println!("Deleted profile {name}");
            }
        }
    }
    Ok(())
}

/// Prints one profile; `verb` (Created, Updated) heads the human output.
fn show(file: &ProfileFile, name: &str, format: Format, verb: &str) {
    let Some(profile) = file.profiles.get(name) else { return };
    let current = file.current.as_deref() == Some(name);
    if format.print(&ProfileJson { profile: name, current, settings: profile }) {
        return;
    }
    if !verb.is_empty() {
        println!("{verb} profile {name}{}", if current { " (current)" } else { "" });
    }
    let or_default = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| format!("{default} (default)"));
    print!(
        "{}",
        pairs(&[
            ("PROFILE", name.to_string()),
            ("CURRENT", current.to_string()),
            ("BROKERS", or_default(&profile.brokers, crate::cli::DEFAULT_BROKERS)),
            ("SCHEMA-REGISTRY", or_default(&profile.schema_registry_url, crate::cli::DEFAULT_SCHEMA_REGISTRY)),
            ("REST-PROXY", or_default(&profile.rest_proxy_url, crate::cli::DEFAULT_REST_PROXY)),
            ("TIMEOUT", or_default(&profile.timeout, "10s")),
        ])
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(brokers: Option<&str>, timeout: Option<&str>) -> SettingArgs {
        SettingArgs {
            brokers: brokers.map(str::to_string),
            schema_registry_url: None,
            rest_proxy_url: None,
            timeout: timeout.map(str::to_string),
        }
    }

    #[test]
    fn create_use_set_delete_round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("config.toml");
        let create = |name: &str, brokers: &str| ProfileCommand::Create {
            name: name.to_string(),
            settings: settings(Some(brokers), None),
            overwrite: false,
            no_use: false,
        };
        execute(create("a", "h1:9092"), Format::Json, &path).expect("create a");
        execute(create("b", "h2:9092"), Format::Json, &path).expect("create b");
        let file = load(&path).expect("load");
        assert_eq!(file.current.as_deref(), Some("b"));
        assert_eq!(file.profiles["a"].brokers.as_deref(), Some("h1:9092"));

        let err = execute(create("a", "x:1"), Format::Json, &path).expect_err("exists");
        assert_eq!(err.0, Exit::Failed);

        execute(ProfileCommand::Use { name: "a".into() }, Format::Json, &path).expect("use");
        execute(
            ProfileCommand::Set { name: "a".into(), settings: settings(Some(""), Some("30s")) },
            Format::Json,
            &path,
        )
        .expect("set");
        let file = load(&path).expect("load");
        assert_eq!(file.current.as_deref(), Some("a"));
        assert_eq!(file.profiles["a"], Profile { timeout: Some("30s".into()), ..Profile::default() });

        let bad = execute(
            ProfileCommand::Set { name: "a".into(), settings: settings(None, Some("soon")) },
            Format::Json,
            &path,
        );
        assert_eq!(bad.expect_err("bad timeout").0, Exit::Usage);
        assert_eq!(
            execute(ProfileCommand::Use { name: "zz".into() }, Format::Json, &path).expect_err("x").0,
            Exit::NotFound
        );

        execute(ProfileCommand::Delete { name: "a".into() }, Format::Json, &path).expect("delete");
        let file = load(&path).expect("load");
        assert_eq!(file.current, None);
        assert!(!file.profiles.contains_key("a"));
    }

    #[test]
    fn a_broken_file_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "current = [").expect("write");
        let e = load(&path).expect_err("broken");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }
}
