//! Record templates in kcat's and rpk's style, for `topic consume -f`
//! (how each record is printed) and `topic produce -f` (how each input line
//! is split into a record).
//!
//! | directive | output (consume) | input (produce) |
//! |---|---|---|
//! | `%t` | topic | — |
//! | `%p` | partition | partition |
//! | `%o` | offset | — |
//! | `%k` | key (empty when null) | key |
//! | `%K` | key length (-1 when null) | — |
//! | `%v`, `%s` | value (empty when null) | value |
//! | `%V`, `%S` | value length (-1 when null) | — |
//! | `%T` | timestamp (ms since the epoch) | timestamp (ms) |
//! | `%h` | headers as `k1=v1,k2=v2` | — |
//! | `%%` | `%` | `%` |
//!
//! Escapes: `\n`, `\t`, `\r`, `\\`. An input template describes one line:
//! each field runs to the first occurrence of the text that follows it
//! (the last one to the end of the line), so two fields need text between
//! them, and the template may end with `\n` but hold no other newline.

/// A field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Topic,
    Partition,
    Offset,
    Key,
    KeyLength,
    Value,
    ValueLength,
    Timestamp,
    Headers,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Text(Vec<u8>),
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    tokens: Vec<Token>,
}

/// What a record shows through a template.
#[derive(Debug, Default)]
pub struct Shown<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Option<bytes::Bytes>)],
}

impl Template {
    /// Parses `%x` directives and backslash escapes.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('r') => literal.push(b'\r'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        return Err(format!("unknown escape \\{other} in \"{text}\" (use \\n, \\t, \\r or \\\\)"));
                    }
                    None => return Err(format!("\"{text}\" ends with a lone backslash")),
                },
                '%' => {
                    let field = match chars.next() {
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some('t') => Field::Topic,
                        Some('p') => Field::Partition,
                        Some('o') => Field::Offset,
                        Some('k') => Field::Key,
                        Some('K') => Field::KeyLength,
                        Some('v' | 's') => Field::Value,
                        Some('V' | 'S') => Field::ValueLength,
                        Some('T') => Field::Timestamp,
                        Some('h') => Field::Headers,
                        Some(other) => {
                            return Err(format!(
                                "unknown directive %{other} in \"{text}\" (use %t %p %o %k %K %v %V %T %h or %%)"
                            ));
                        }
                        None => return Err(format!("\"{text}\" ends with a lone %")),
                    };
                    if !literal.is_empty() {
                        tokens.push(Token::Text(std::mem::take(&mut literal)));
                    }
                    tokens.push(Token::Field(field));
                }
                c => {
                    let mut buf = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Text(literal));
        }
        Ok(Template { tokens })
    }

    /// Appends `record` as this template shows it to `out`.
    pub fn render(&self, record: &Shown<'_>, out: &mut Vec<u8>) {
        use std::io::Write as _;
        for token in &self.tokens {
            // Writing to a Vec cannot fail.
            let _ = match token {
                Token::Text(t) => out.write_all(t),
                Token::Field(Field::Topic) => out.write_all(record.topic.as_bytes()),
                Token::Field(Field::Partition) => write!(out, "{}", record.partition),
                Token::Field(Field::Offset) => write!(out, "{}", record.offset),
                Token::Field(Field::Key) => out.write_all(record.key.unwrap_or_default()),
                Token::Field(Field::KeyLength) => write!(out, "{}", record.key.map_or(-1, |k| k.len() as i64)),
                Token::Field(Field::Value) => out.write_all(record.value.unwrap_or_default()),
                Token::Field(Field::ValueLength) => write!(out, "{}", record.value.map_or(-1, |v| v.len() as i64)),
                Token::Field(Field::Timestamp) => write!(out, "{}", record.timestamp),
                Token::Field(Field::Headers) => {
                    for (i, (k, v)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(k.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(v.as_deref().unwrap_or_default());
                    }
                    Ok(())
                }
            };
        }
    }
}

/// One input line split by an input template.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
}

/// An input template (`topic produce -f`): how one line becomes a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTemplate {
    tokens: Vec<Token>,
}

impl InputTemplate {
    /// Parses and checks an input template: fields `%k %v %p %T` only, text
    /// between any two fields, no newline but a final one.
    pub fn parse(text: &str) -> Result<InputTemplate, String> {
        let mut tokens = Template::parse(text)?.tokens;
        if let Some(Token::Text(t)) = tokens.last_mut()
            && t.ends_with(b"\n")
        {
            t.pop();
            if t.is_empty() {
                tokens.pop();
            }
        }
        let mut previous_field = false;
        for token in &tokens {
            match token {
                Token::Text(t) if t.contains(&b'\n') => {
                    return Err(format!(
                        "\"{text}\": each record is one line, so only a final \\n may appear in an input format"
                    ));
                }
                Token::Text(_) => previous_field = false,
                Token::Field(f) => {
                    if !matches!(f, Field::Key | Field::Value | Field::Partition | Field::Timestamp) {
                        return Err(format!("\"{text}\": an input format reads only %k, %v, %p and %T"));
                    }
                    if previous_field {
                        return Err(format!(
                            "\"{text}\": two fields need text between them to tell where one ends (%k:%v)"
                        ));
                    }
                    previous_field = true;
                }
            }
        }
        Ok(InputTemplate { tokens })
    }

    /// Splits one line (without its newline).
    pub fn split<'a>(&self, line: &'a [u8]) -> Result<Parsed<'a>, String> {
        let mut parsed = Parsed::default();
        let mut pos = 0;
        let mut i = 0;
        while i < self.tokens.len() {
            match &self.tokens[i] {
                Token::Text(t) => {
                    if !line[pos..].starts_with(t) {
                        return Err(format!("expected \"{}\" at byte {pos}", String::from_utf8_lossy(t)));
                    }
                    pos += t.len();
                    i += 1;
                }
                Token::Field(field) => {
                    let end = match self.tokens.get(i + 1) {
                        Some(Token::Text(t)) => match find(&line[pos..], t) {
                            Some(at) => pos + at,
                            None => {
                                return Err(format!("no \"{}\" after byte {pos}", String::from_utf8_lossy(t)));
                            }
                        },
                        _ => line.len(),
                    };
                    let part = &line[pos..end];
                    match field {
                        Field::Key => parsed.key = Some(part),
                        Field::Value => parsed.value = Some(part),
                        Field::Partition => parsed.partition = Some(number(part, "partition")?),
                        Field::Timestamp => parsed.timestamp = Some(number(part, "timestamp")?),
                        _ => {}
                    }
                    pos = end;
                    i += 1;
                }
            }
        }
        if pos != line.len() {
            return Err(format!("unexpected text after byte {pos}"));
        }
        Ok(parsed)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn number<T: std::str::FromStr>(bytes: &[u8], what: &str) -> Result<T, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("{what} \"{}\" is not a number", String::from_utf8_lossy(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, record: &Shown<'_>) -> String {
        let mut out = Vec::new();
        Template::parse(template).expect("parses").render(record, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_directive_and_escape_renders() {
        let headers = vec![("a".to_string(), Some(bytes::Bytes::from_static(b"1"))), ("b".to_string(), None)];
        let record = Shown {
            topic: "orders",
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers: &headers,
        };
        assert_eq!(
            render(r"%t [%p] @%o %T %k=%v (%K/%V) {%h} 100%%\t|\\\n", &record),
            "orders [2] @41 1700000000000 k1=hello (2/5) {a=1,b=} 100%\t|\\\n"
        );
        assert_eq!(render("%s|%S", &record), "hello|5");
        let null = Shown { topic: "t", ..Shown::default() };
        assert_eq!(render("[%k][%v] %K %V", &null), "[][] -1 -1");
        assert_eq!(render("héllo %v", &null), "héllo ");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        assert!(Template::parse("%x").expect_err("unknown").contains("unknown directive %x"));
        assert!(Template::parse("abc%").expect_err("lone").contains("lone %"));
        assert!(Template::parse(r"\q").expect_err("escape").contains("unknown escape"));
        assert!(Template::parse("x\\").expect_err("backslash").contains("lone backslash"));
    }

    #[test]
    fn input_templates_split_lines() {
        let t = InputTemplate::parse(r"%k %v\n").expect("parses");
        assert_eq!(
            t.split(b"user-1 hello world").expect("splits"),
            Parsed { key: Some(b"user-1"), value: Some(b"hello world"), ..Parsed::default() }
        );
        let t = InputTemplate::parse("[%p] %T|%k:%v").expect("parses");
        assert_eq!(
            t.split(b"[2] 1700|k:v:w").expect("splits"),
            Parsed { key: Some(b"k"), value: Some(b"v:w"), partition: Some(2), timestamp: Some(1700) }
        );
        assert!(t.split(b"2] 1|k:v").expect_err("prefix").contains("expected \"[\""));
        assert!(t.split(b"[x] 1|k:v").expect_err("number").contains("partition \"x\""));
        assert!(InputTemplate::parse(r"%k:%v").expect("parses").split(b"novalue").is_err());
        assert_eq!(InputTemplate::parse(r"%v\n").expect("parses").split(b"").expect("empty").value, Some(&b""[..]));
    }

    #[test]
    fn ambiguous_input_templates_are_refused() {
        assert!(InputTemplate::parse("%k%v").expect_err("adjacent").contains("text between"));
        assert!(InputTemplate::parse(r"%k\n%v").expect_err("newline").contains("one line"));
        assert!(InputTemplate::parse("%o %v").expect_err("offset").contains("only %k, %v, %p and %T"));
    }
}
