//! A small HTTP/1.1 client for a schema registry's REST API: one connection
//! per request, JSON in and out, registry errors (`{"error_code", "message"}`)
//! kept apart from failures to reach the registry. Used by the `schema` and
//! `subject` commands and by the REST proxy's schema-registry formats;
//! `schemas.rs` adds schemas parsed with their references and cached by id,
//! for the REST proxy and `tributary topic produce`/`consume`.

pub mod schemas;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Largest answer read from the registry.
const ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer: connection refused, timeout, broken connection.
    Unreachable { url: String, detail: String },
    /// The registry answered with an error.
    Registry { status: u16, code: Option<i64>, message: String },
    /// The URL or the answer cannot be used.
    Invalid(String),
}

impl CallError {
    /// The registry's error code, when it gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            CallError::Registry { code, .. } => *code,
            _ => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable { url, detail } => write!(f, "cannot reach the schema registry at {url}: {detail}"),
            CallError::Registry { status, code: Some(code), message } => {
                write!(f, "{message} (error code {code}, HTTP {status})")
            }
            CallError::Registry { status, code: None, message } => write!(f, "{message} (HTTP {status})"),
            CallError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Where the registry is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    url: String,
    authority: String,
    prefix: String,
    authorization: Option<String>,
    timeout: Duration,
}

impl RegistryClient {
    /// A client for `url` (`http://[user:password@]host:port[/prefix]`).
    pub fn new(url: &str, timeout: Duration) -> Result<RegistryClient, CallError> {
        let trimmed = url.trim().trim_end_matches('/');
        let rest = if let Some(rest) = trimmed.strip_prefix("http://") {
            rest
        } else if trimmed.starts_with("https://") {
            return Err(CallError::Invalid(format!(
                "{url}: only http:// registry URLs are supported; put a plain-HTTP listener in front"
            )));
        } else if trimmed.contains("://") {
            return Err(CallError::Invalid(format!("{url}: the registry URL must start with http://")));
        } else {
            trimmed
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, authority) = match authority.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, authority),
        };
        if authority.is_empty() {
            return Err(CallError::Invalid(format!("{url}: no host in the registry URL")));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(RegistryClient {
            url: format!("http://{authority}{prefix}"),
            authority,
            prefix: prefix.to_string(),
            authorization: userinfo.map(|u| format!("Basic {}", base64(u.as_bytes()))),
            timeout,
        })
    }

    /// The registry's URL without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// GET `path` (already encoded, with its query).
    pub async fn get(&self, path: &str) -> Result<Value, CallError> {
        self.call(Method::GET, path, None).await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PUT `body` to `path`.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Result<Value, CallError> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let exchange = self.exchange(method, path, body);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Unreachable {
                url: self.url.clone(),
                detail: format!("no answer within {} ms", self.timeout.as_millis()),
            }),
        }
    }

    async fn exchange(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let unreachable =
            |e: &dyn std::fmt::Display| CallError::Unreachable { url: self.url.clone(), detail: e.to_string() };
        let stream = TcpStream::connect(&self.authority).await.map_err(|e| unreachable(&e))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let payload = match body {
            Some(v) => Bytes::from(v.to_string()),
            None => Bytes::new(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, "application/vnd.schemaregistry.v1+json, application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/vnd.schemaregistry.v1+json");
        }
        if let Some(auth) = &self.authorization {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(payload))
            .map_err(|e| CallError::Invalid(format!("cannot build the request for {path}: {e}")))?;
        let answer = sender.send_request(request).await.map_err(|e| unreachable(&e))?;
        let (parts, body) = answer.into_parts();
        let bytes = Limited::new(body, ANSWER_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| CallError::Unreachable { url: self.url.clone(), detail: format!("reading the answer: {e}") })?
            .to_bytes();
        let status = parts.status.as_u16();
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if parts.status.is_success() {
            return parsed.ok_or_else(|| {
                CallError::Invalid(format!(
                    "the registry's answer to {path} is not JSON: {}",
                    String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>()
                ))
            });
        }
        let code = parsed.as_ref().and_then(|v| v.get("error_code")).and_then(Value::as_i64);
        let message =
            parsed.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str).map(str::to_string).unwrap_or_else(
                || {
                    let text = String::from_utf8_lossy(&bytes).trim().chars().take(300).collect::<String>();
                    if text.is_empty() { parts.status.canonical_reason().unwrap_or("error").to_string() } else { text }
                },
            );
        Err(CallError::Registry { status, code, message })
    }
}

/// `text` as one URL path segment or query value (everything but unreserved characters escaped).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = RegistryClient::new("http://127.0.0.1:8081/", Duration::from_secs(1)).ok();
        assert_eq!(c.as_ref().map(|c| c.authority.as_str()), Some("127.0.0.1:8081"));
        let c = RegistryClient::new("http://u:p@sr/api", Duration::from_secs(1)).ok();
        assert_eq!(c.as_ref().map(|c| (c.authority.as_str(), c.prefix.as_str())), Some(("sr:80", "/api")));
        assert_eq!(c.and_then(|c| c.authorization), Some("Basic dTpw".to_string()));
        assert!(RegistryClient::new("https://sr:8081", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode(":.ctx:a/b c"), "%3A.ctx%3Aa%2Fb%20c");
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
