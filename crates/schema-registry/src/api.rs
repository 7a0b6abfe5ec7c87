//! The REST API on axum: Confluent's paths, query parameters, content type
//! and error bodies. Reads are answered from this instance's index; writes
//! run here when this instance is the elected writer and are forwarded to
//! the writer otherwise (50003 when that fails, 50004 when no writer is known).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::election::Leadership;
use crate::error::ApiError;
use crate::forward;
use crate::registry::{Registry, SchemaRequest, VersionSpec, page};

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Header marking a request forwarded by another instance (never forwarded twice).
pub const FORWARDED_HEADER: &str = "x-tributary-forwarded";

/// How long a write waits for an election before answering 50004.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Who writes.
    pub leadership: watch::Receiver<Leadership>,
    /// Kafka cluster id, for /v1/metadata/id.
    pub kafka_cluster_id: String,
    /// Group id, the registry cluster's id.
    pub group_id: String,
    /// Timeout of a forwarded request.
    pub forward_timeout: Duration,
}

type Params = Query<HashMap<String, String>>;

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn opt_flag(q: &HashMap<String, String>, name: &str) -> Option<bool> {
    q.get(name).map(|v| v.eq_ignore_ascii_case("true"))
}

fn number(q: &HashMap<String, String>, name: &str) -> Option<i64> {
    q.get(name).and_then(|v| v.trim().parse().ok())
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    }
}

/// The raw schema text: JSON for Avro and JSON Schema, text for Protobuf.
fn raw_schema(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// A request body as JSON: 400 when it is not JSON, 42209 when it is too large.
fn body_json(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(42209, format!("Request body is too large: {e}"))
        } else {
            ApiError::new(400, format!("Cannot read the request body: {e}"))
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| ApiError::new(400, format!("Invalid JSON in the request body: {e}")))
}

pub(crate) fn schema_request(body: Result<Bytes, BytesRejection>) -> Result<SchemaRequest, ApiError> {
    let value = body_json(body)?;
    if !value.is_object() {
        return Err(ApiError::new(422, "The request body must be a JSON object"));
    }
    let mut request: SchemaRequest =
        serde_json::from_value(value).map_err(|e| ApiError::new(422, format!("Unrecognized request body: {e}")))?;
    request.metadata = request.metadata.filter(|m| !m.is_null()).map(crate::fields::without_nulls);
    request.rule_set = request.rule_set.filter(|r| !r.is_null()).map(crate::fields::without_nulls);
    if let Some(m) = &mut request.metadata {
        crate::fields::metadata("metadata", m)?;
    }
    if let Some(r) = &mut request.rule_set {
        crate::fields::rule_set("ruleSet", r)?;
    }
    Ok(request)
}

fn version(text: &str) -> Result<VersionSpec, ApiError> {
    VersionSpec::parse(text)
}

fn id(text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>().ok().filter(|i| *i > 0).ok_or_else(ApiError::schema_not_found)
}

/// What a forwarded write needs of the original request.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for WriteRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let uri =
            OriginalUri::from_request_parts(parts, state).await.map(|u| u.0).unwrap_or_else(|_| parts.uri.clone());
        let path_and_query = uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
        Ok(WriteRequest { method: parts.method.clone(), path_and_query, headers: parts.headers.clone() })
    }
}

impl AppState {
    /// `None` when this instance writes; otherwise the writer's answer (or the error why there is none).
    async fn route_write(&self, request: &WriteRequest, body: &Result<Bytes, BytesRejection>) -> Option<Response> {
        let mut leadership = self.leadership.clone();
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let now = leadership.borrow_and_update().clone();
            if now.is_leader {
                return None;
            }
            if request.headers.contains_key(FORWARDED_HEADER) {
                return Some(
                    ApiError::forwarding("the request was forwarded to an instance that is no longer the writer")
                        .into_response(),
                );
            }
            if let Some(url) = now.leader_url {
                let Ok(bytes) = body else {
                    return Some(ApiError::new(400, "Cannot read the request body").into_response());
                };
                return Some(
                    forward::forward(
                        &url,
                        &request.method,
                        &request.path_and_query,
                        &request.headers,
                        bytes.clone(),
                        self.forward_timeout,
                    )
                    .await
                    .unwrap_or_else(|e| e.into_response()),
                );
            }
            if tokio::time::timeout_at(deadline, leadership.changed()).await.is_err() {
                return Some(ApiError::unknown_leader().into_response());
            }
        }
    }
}

async fn root() -> Response {
    ok(json!({}))
}

async fn schema_types() -> Response {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

async fn schemas(State(st): State<AppState>, Query(q): Params) -> Response {
    let prefix = q.get("subjectPrefix").map_or("", String::as_str);
    let all = st.registry.all_schemas(prefix, flag(&q, "deleted"), flag(&q, "latestOnly"));
    ok(json!(page(all, number(&q, "offset"), number(&q, "limit"))))
}

async fn schema_by_id(State(st): State<AppState>, Path(raw): Path<String>, Query(q): Params) -> Response {
    answer(
        id(&raw).and_then(|i| st.registry.schema_by_id(i, q.get("format").map(String::as_str), flag(&q, "fetchMaxId"))),
    )
}

async fn schema_text_by_id(State(st): State<AppState>, Path(raw): Path<String>, Query(q): Params) -> Response {
    let result = id(&raw).and_then(|i| st.registry.schema_by_id(i, q.get("format").map(String::as_str), false));
    match result {
        Ok(v) => raw_schema(v.get("schema").and_then(Value::as_str).unwrap_or_default().to_string()),
        Err(e) => e.into_response(),
    }
}

async fn id_subjects(State(st): State<AppState>, Path(raw): Path<String>, Query(q): Params) -> Response {
    let result = id(&raw).and_then(|i| st.registry.id_versions(i, flag(&q, "deleted")));
    answer(result.map(|svs| {
        let mut subjects: Vec<String> = svs.into_iter().map(|(s, _)| s).collect();
        subjects.dedup();
        if let Some(only) = q.get("subject") {
            subjects.retain(|s| s == only);
        }
        json!(page(subjects, number(&q, "offset"), number(&q, "limit")))
    }))
}

async fn id_versions(State(st): State<AppState>, Path(raw): Path<String>, Query(q): Params) -> Response {
    let result = id(&raw).and_then(|i| st.registry.id_versions(i, flag(&q, "deleted")));
    answer(result.map(|svs| {
        let list: Vec<Value> = svs
            .into_iter()
            .filter(|(s, _)| q.get("subject").is_none_or(|only| only == s))
            .map(|(s, v)| json!({"subject": s, "version": v}))
            .collect();
        json!(list)
    }))
}

async fn subjects(State(st): State<AppState>, Query(q): Params) -> Response {
    let prefix = q.get("subjectPrefix").map(String::as_str).filter(|p| *p != ":*:").unwrap_or("");
    let list = st.registry.subjects(prefix, flag(&q, "deleted"), flag(&q, "deletedOnly"));
    ok(json!(page(list, number(&q, "offset"), number(&q, "limit"))))
}

async fn subject_versions(State(st): State<AppState>, Path(subject): Path<String>, Query(q): Params) -> Response {
    let result =
        st.registry.versions(&subject, flag(&q, "deleted"), flag(&q, "deletedOnly"), flag(&q, "deletedAsNegative"));
    answer(result.map(|vs| json!(page(vs, number(&q, "offset"), number(&q, "limit")))))
}

async fn register(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Params,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    let parsed = match schema_request(body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    answer(st.registry.register(&subject, parsed, opt_flag(&q, "normalize")).await.map(|mut v| {
        // Answer what every client reads first; newer clients also read the rest.
        if let Some(obj) = v.as_object_mut()
            && flag(&q, "idOnly")
        {
            obj.retain(|k, _| k == "id");
        }
        v
    }))
}

async fn lookup(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(
        schema_request(body)
            .and_then(|r| st.registry.lookup(&subject, &r, opt_flag(&q, "normalize"), flag(&q, "deleted"))),
    )
}

async fn delete_subject(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Params,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    answer(st.registry.delete_subject(&subject, flag(&q, "permanent")).await)
}

async fn get_version(
    State(st): State<AppState>,
    Path((subject, raw)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let result = version(&raw).and_then(|spec| st.registry.get_version(&subject, spec, flag(&q, "deleted")));
    answer(result.and_then(|v| {
        let mut out = crate::registry::version_json(&v);
        if let Some(format) = q.get("format").filter(|f| !f.is_empty()) {
            out["schema"] = json!(st.registry.formatted_text(&v, Some(format))?);
        }
        Ok(out)
    }))
}

async fn get_version_schema(
    State(st): State<AppState>,
    Path((subject, raw)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let result = version(&raw)
        .and_then(|spec| st.registry.get_version(&subject, spec, flag(&q, "deleted")))
        .and_then(|v| st.registry.formatted_text(&v, q.get("format").map(String::as_str)));
    match result {
        Ok(text) => raw_schema(text),
        Err(e) => e.into_response(),
    }
}

async fn referenced_by(
    State(st): State<AppState>,
    Path((subject, raw)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let result = version(&raw).and_then(|spec| st.registry.referenced_by(&subject, spec, flag(&q, "deleted")));
    answer(result.map(|ids| json!(page(ids, number(&q, "offset"), number(&q, "limit")))))
}

async fn delete_version(
    State(st): State<AppState>,
    Path((subject, raw)): Path<(String, String)>,
    Query(q): Params,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let spec = match version(&raw) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    answer(st.registry.delete_version(&subject, spec, flag(&q, "permanent")).await)
}

async fn compatibility_all(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(schema_request(body).and_then(|r| {
        st.registry.test_compatibility(&subject, None, &r, opt_flag(&q, "normalize"), flag(&q, "verbose"))
    }))
}

async fn compatibility_one(
    State(st): State<AppState>,
    Path((subject, raw)): Path<(String, String)>,
    Query(q): Params,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(version(&raw).and_then(|spec| {
        let r = schema_request(body)?;
        st.registry.test_compatibility(&subject, Some(spec), &r, opt_flag(&q, "normalize"), flag(&q, "verbose"))
    }))
}

pub(crate) fn object_body(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    match body_json(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::new(422, "The request body must be a JSON object")),
    }
}

// `/config` and `/mode` act on the global setting, `/config/{subject}` and `/mode/{subject}` on one
// subject's: one handler serves both, with the subject optional. The global setting always answers
// with its value (there is nothing to default to).
type Subject = Option<Path<String>>;

async fn get_config(State(st): State<AppState>, subject: Subject, Query(q): Params) -> Response {
    let subject = subject.map(|Path(s)| s);
    answer(st.registry.get_config(subject.as_deref(), subject.is_none() || flag(&q, "defaultToGlobal")))
}

async fn put_config(
    State(st): State<AppState>,
    subject: Subject,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    let subject = subject.map(|Path(s)| s);
    answer(match object_body(body) {
        Ok(m) => st.registry.set_config(subject.as_deref(), m).await,
        Err(e) => Err(e),
    })
}

async fn delete_config(
    State(st): State<AppState>,
    subject: Subject,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    let subject = subject.map(|Path(s)| s);
    answer(st.registry.delete_config(subject.as_deref()).await)
}

async fn get_mode(State(st): State<AppState>, subject: Subject, Query(q): Params) -> Response {
    let subject = subject.map(|Path(s)| s);
    answer(st.registry.get_mode(subject.as_deref(), subject.is_none() || flag(&q, "defaultToGlobal")))
}

pub(crate) fn mode_of_body(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let m = object_body(body)?;
    m.get("mode")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::new(42204, "Invalid mode: the body needs a \"mode\" string"))
}

async fn put_mode(
    State(st): State<AppState>,
    subject: Subject,
    Query(q): Params,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    let subject = subject.map(|Path(s)| s);
    answer(match mode_of_body(body) {
        Ok(mode) => st.registry.set_mode(subject.as_deref(), &mode, flag(&q, "force")).await,
        Err(e) => Err(e),
    })
}

async fn delete_mode(
    State(st): State<AppState>,
    subject: Subject,
    request: WriteRequest,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(forwarded) = st.route_write(&request, &body).await {
        return forwarded;
    }
    let subject = subject.map(|Path(s)| s);
    answer(st.registry.delete_mode(subject.as_deref()).await)
}

async fn metadata_id(State(st): State<AppState>) -> Response {
    ok(json!({"scope": {"path": [], "clusters": {
        "kafka-cluster": st.kafka_cluster_id,
        "schema-registry-cluster": st.group_id,
    }}}))
}

async fn metadata_version() -> Response {
    ok(json!({"version": "7.7.0", "commitId": concat!("tributary-", env!("CARGO_PKG_VERSION"))}))
}

async fn not_found(uri: OriginalUri) -> Response {
    ApiError::new(404, format!("HTTP 404 Not Found: {}", uri.0.path())).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(405, "HTTP 405 Method Not Allowed").into_response()
}

/// The router, with a request body limit of `body_limit` bytes.
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/", get(root).post(root))
        .route("/schemas", get(schemas))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(subject_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(referenced_by))
        .route("/compatibility/subjects/{subject}/versions", post(compatibility_all))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility_one))
        .route("/config", get(get_config).put(put_config).delete(delete_config))
        .route("/config/{subject}", get(get_config).put(put_config).delete(delete_config))
        .route("/mode", get(get_mode).put(put_mode).delete(delete_mode))
        .route("/mode/{subject}", get(get_mode).put(put_mode).delete(delete_mode))
        .route("/v1/metadata/id", get(metadata_id))
        .route("/v1/metadata/version", get(metadata_version))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
