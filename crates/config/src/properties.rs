//! Java `.properties` files, as Kafka's `server.properties` is written:
//! `#`/`!` comments, `=`, `:` or whitespace separators, backslash line
//! continuations and escapes (`\t`, `\n`, `\uXXXX`, ...).

use std::collections::BTreeMap;

/// Parses properties text into key/value pairs; later keys win.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut continuing = false;
    for raw_line in text.lines() {
        let line = if continuing { raw_line.trim_start() } else { raw_line };
        if !continuing {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
        }
        let trailing_backslashes = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing_backslashes % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continuing = true;
            continue;
        }
        logical.push_str(line);
        continuing = false;
        let (key, value) = split_entry(logical.trim_start());
        out.insert(unescape(&key), unescape(&value));
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_entry(logical.trim_start());
        out.insert(unescape(&key), unescape(&value));
    }
    out
}

/// One `key=value` line (without the newline) that [`parse_properties`]
/// reads back as exactly `key` and `value`: separators, comment marks and
/// backslashes in the key are escaped, as are leading spaces of the value,
/// line breaks, tabs and control characters.
pub fn format_property(key: &str, value: &str) -> String {
    let mut line = String::with_capacity(key.len() + value.len() + 1);
    for (i, c) in key.chars().enumerate() {
        match c {
            '=' | ':' | ' ' | '\\' => {
                line.push('\\');
                line.push(c);
            }
            '#' | '!' if i == 0 => {
                line.push('\\');
                line.push(c);
            }
            _ => escape_common(&mut line, c),
        }
    }
    line.push('=');
    let mut leading = true;
    for c in value.chars() {
        match c {
            ' ' if leading => line.push_str("\\ "),
            '\\' => line.push_str("\\\\"),
            _ => escape_common(&mut line, c),
        }
        leading = leading && c == ' ';
    }
    line
}

fn escape_common(line: &mut String, c: char) {
    match c {
        '\t' => line.push_str("\\t"),
        '\n' => line.push_str("\\n"),
        '\r' => line.push_str("\\r"),
        '\u{c}' => line.push_str("\\f"),
        c if c.is_control() => line.push_str(&format!("\\u{:04x}", c as u32)),
        c => line.push(c),
    }
}

/// Splits at the first unescaped `=`, `:` or whitespace, skipping the
/// separator and whitespace around it.
fn split_entry(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            key.push(c);
            key.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '=' || c == ':' || c.is_whitespace() {
            break;
        }
        key.push(c);
        i += 1;
    }
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i < chars.len() && (chars[i] == '=' || chars[i] == ':') {
        i += 1;
    }
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (key, chars[i..].iter().collect())
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_server_properties_forms() {
        let text = "# comment\n! also comment\n\nnode.id=1\nlisteners = PLAINTEXT://:9092,\\\n    CONTROLLER://:9093\nlog.dirs:/tmp/k\nkey\\=with\\:seps value\\twith tab\nunicode=\\u00e9\nempty=\n   indented.key=v\n";
        let p = parse_properties(text);
        assert_eq!(p["node.id"], "1");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093");
        assert_eq!(p["log.dirs"], "/tmp/k");
        assert_eq!(p["key=with:seps"], "value\twith tab");
        assert_eq!(p["unicode"], "é");
        assert_eq!(p["empty"], "");
        assert_eq!(p["indented.key"], "v");
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn formatted_lines_read_back_unchanged() {
        let cases = [
            ("num.partitions", "3"),
            ("key=with:seps and space", "value"),
            ("#not.a.comment", "  leading spaces kept"),
            ("!bang", "ends with backslash \\"),
            ("multi", "line one\nline two\ttab\r\u{c}\u{1}"),
            ("empty", ""),
            ("unicode.é", "ünïcödé = : #"),
        ];
        let text: String = cases.iter().map(|(k, v)| format_property(k, v) + "\n").collect();
        let parsed = parse_properties(&text);
        assert_eq!(parsed.len(), cases.len(), "{text}");
        for (k, v) in cases {
            assert_eq!(parsed.get(k).map(String::as_str), Some(v), "{k:?} in {text}");
        }
        assert_eq!(format_property("log.dirs", "/tmp/k"), "log.dirs=/tmp/k");
    }

    #[test]
    fn later_keys_win_and_whitespace_separates() {
        let p = parse_properties("a 1\na=2\nb\tthree\n");
        assert_eq!(p["a"], "2");
        assert_eq!(p["b"], "three");
    }
}
