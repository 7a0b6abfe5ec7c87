//! How commands print their results: aligned tables for people (`-o table`,
//! the default), or the same data as one JSON object on one line
//! (`-o json`) or as a YAML document (`-o yaml`) for scripts.
//!
//! The YAML is written from the JSON value, so both formats always carry
//! the same fields; strings that YAML would read as something else
//! (`true`, `null`, `0x1f`, `1e3`, `-`, ...) are double-quoted.

use clap::ValueEnum;
use serde::Serialize;

/// Output format of a command (`-o` / `--output`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned tables and sentences for people.
    #[default]
    #[value(alias = "human")]
    Table,
    /// One JSON object on one line, for scripts.
    Json,
    /// The same object as a YAML document.
    Yaml,
}

impl Format {
    /// Prints `value` as JSON or YAML; a table format prints nothing (the
    /// caller matched it and renders the table itself).
    pub fn emit<T: Serialize>(self, value: &T) {
        self.print(value);
    }

    /// Prints `value` in this format when it is JSON or YAML; returns false
    /// (printing nothing) for a table, which the caller renders itself.
    pub fn print<T: Serialize>(self, value: &T) -> bool {
        let text = match self {
            Format::Table => return false,
            Format::Json => serde_json::to_string(value).map(|mut s| {
                s.push('\n');
                s
            }),
            Format::Yaml => to_yaml(value),
        };
        match text {
            Ok(text) => print!("{text}"),
            Err(e) => eprintln!("error: cannot write the output: {e}"),
        }
        true
    }
}

/// What a server command (`schema-registry`, `rest-proxy`) prints when it
/// is up: a sentence for people, or `{"event": "started", "service", "url"}`.
pub fn announce_started(format: Format, service: &str, title: &str, url: &str) {
    if !format.print(&serde_json::json!({"event": "started", "service": service, "url": url})) {
        println!("{title} is up at {url}");
    }
}

/// What a server command prints once it has stopped: nothing for people,
/// `{"event": "stopped", "service"}` for scripts.
pub fn announce_stopped(format: Format, service: &str) {
    format.print(&serde_json::json!({"event": "stopped", "service": service}));
}

/// A JSON value that keeps the order of object keys (serde_json's `Value`
/// sorts them), so YAML lists fields in the order JSON output has them.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        struct NodeVisitor;
        impl<'de> serde::de::Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Node::Null, Node::Number))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::String(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// `value` as a YAML document (block style, two-space indent, ending in a
/// newline), its keys in the order `value` serializes them.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let node: Node = serde_json::from_str(&serde_json::to_string(value)?)?;
    let mut out = String::new();
    match &node {
        Node::Map(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Node::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    Ok(out)
}

fn write_map(out: &mut String, map: &[(String, Node)], indent: usize) {
    for (n, (key, value)) in map.iter().enumerate() {
        // The first key of a map inside a sequence item sits on the "- " line.
        if n > 0 || indent == 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&scalar_string(key));
        out.push(':');
        write_nested(out, value, indent);
    }
}

fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        match item {
            Node::Map(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Node::Seq(inner) if !inner.is_empty() => {
                out.pop();
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// The value after `key:`: inline for scalars and empty collections, else on the next lines.
fn write_nested(out: &mut String, value: &Node, indent: usize) {
    match value {
        Node::Map(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Node::Seq(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn inline(value: &Node) -> String {
    match value {
        Node::Null => "null".to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.to_string(),
        Node::String(s) => scalar_string(s),
        Node::Seq(_) => "[]".to_string(),
        Node::Map(_) => "{}".to_string(),
    }
}

/// A string as a YAML scalar: plain when YAML reads it back as the same
/// string, else double-quoted with JSON's escapes (valid YAML).
fn scalar_string(s: &str) -> String {
    if is_plain_safe(s) { s.to_string() } else { serde_json::Value::String(s.to_string()).to_string() }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')) {
        return false;
    }
    // Words YAML 1.1 and 1.2 readers turn into booleans, nulls or numbers.
    let lower = s.to_ascii_lowercase();
    !matches!(lower.as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | ".inf" | ".nan")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Topic {
        topic: &'static str,
        partitions: u32,
        configs: serde_json::Value,
    }

    #[derive(Serialize)]
    struct Listing {
        topics: Vec<Topic>,
        empty: Vec<u32>,
        none: Option<u32>,
    }

    #[test]
    fn nested_maps_and_sequences_in_field_order() {
        let v = Listing {
            topics: vec![
                Topic { topic: "orders", partitions: 3, configs: json!({}) },
                Topic { topic: "true", partitions: 1, configs: json!({"cleanup.policy": "compact"}) },
            ],
            empty: vec![],
            none: None,
        };
        assert_eq!(
            to_yaml(&v).expect("yaml"),
            "topics:\n\
             - topic: orders\n  partitions: 3\n  configs: {}\n\
             - topic: \"true\"\n  partitions: 1\n  configs:\n    cleanup.policy: compact\n\
             empty: []\n\
             none: null\n"
        );
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        for s in ["", "123", "1e3", "0x1f", "yes", "NULL", "-", "a: b", "#x", "line\nbreak", " pad", "héllo"] {
            assert!(scalar_string(s).starts_with('"'), "{s:?} must be quoted");
        }
        for s in ["orders", "cleanup.policy", "my-group_1", "/v3/clusters"] {
            assert_eq!(scalar_string(s), s);
        }
    }

    #[test]
    fn sequences_of_sequences_and_scalars_at_top() {
        assert_eq!(to_yaml(&json!([[1, 2], "x", 1.5])).expect("yaml"), "-\n  - 1\n  - 2\n- x\n- 1.5\n");
        assert_eq!(to_yaml(&json!("plain")).expect("yaml"), "plain\n");
        assert_eq!(to_yaml(&json!({})).expect("yaml"), "{}\n");
    }
}
