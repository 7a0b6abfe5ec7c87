//! Forwarding a write to the elected instance over HTTP/1.1: same method,
//! path, query, content type and body; the writer's answer goes back as is.
//! A failure to reach it is 50003.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::api::FORWARDED_HEADER;
use crate::error::ApiError;

/// Largest answer accepted from the writer.
const ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// `http://host:port` → `host:port`.
fn authority(url: &str) -> Result<&str, ApiError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        ApiError::forwarding(format!("the writer's URL {url} is not http://; only HTTP is forwarded"))
    })?;
    Ok(rest.trim_end_matches('/'))
}

/// Sends the request to the writer at `url` and returns its answer.
pub async fn forward(
    url: &str,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let authority = authority(url)?.to_string();
    let exchange = async {
        let stream = TcpStream::connect(&authority).await.map_err(|e| ApiError::forwarding(format!("{url}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ApiError::forwarding(format!("{url}: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request =
            Request::builder().method(method.clone()).uri(path_and_query).header(header::HOST, &authority);
        for name in [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        let request = request
            .header(FORWARDED_HEADER, "1")
            .body(Full::new(body))
            .map_err(|e| ApiError::forwarding(format!("cannot build the request: {e}")))?;
        let answer = sender.send_request(request).await.map_err(|e| ApiError::forwarding(format!("{url}: {e}")))?;
        let (parts, body) = answer.into_parts();
        let bytes = Limited::new(body, ANSWER_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| ApiError::forwarding(format!("{url}: reading the answer: {e}")))?
            .to_bytes();
        let mut response = Response::builder().status(parts.status);
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            response = response.header(header::CONTENT_TYPE, ct);
        }
        response.body(Body::from(bytes)).map_err(|e| ApiError::forwarding(format!("{url}: {e}")))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map(IntoResponse::into_response),
        Err(_) => Err(ApiError::forwarding(format!("{url} did not answer within {} ms", timeout.as_millis()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_forwarded() {
        assert_eq!(authority("http://sr-1:8081/").ok(), Some("sr-1:8081"));
        assert_eq!(authority("https://sr-1:8081").map_err(|e| e.code), Err(50003));
    }
}
