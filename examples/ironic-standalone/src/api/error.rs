//! Ironic's error body, and the one mapping from [`ironic_core::Error`] to HTTP.
//!
//! Every non-2xx response carries `{"error_message": "<JSON string>"}` where the
//! string is itself JSON: `{"faultcode": "Client"|"Server", "faultstring": "...",
//! "debuginfo": null}` for errors raised by the API, or `{"code": N, "title": "...",
//! "description": "..."}` for protocol-level ones (406, unknown path, method).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ironic_core::ErrorKind;

/// Marker put in the extensions of responses whose body is already in Ironic's
/// error format, so the middleware does not wrap them again.
#[derive(Clone, Copy, Debug)]
pub struct Formatted;

/// The two shapes of the inner document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `faultcode`/`faultstring`/`debuginfo`.
    Fault,
    /// `code`/`title`/`description`.
    Webob,
}

/// An error answered to an API client.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    shape: Shape,
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            shape: Shape::Fault,
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 406 as Ironic raises it for a feature newer than the requested version.
    pub fn not_acceptable() -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "Request not acceptable.")
    }
    /// 406 from version negotiation (`code`/`title`/`description`).
    pub fn version_not_acceptable(description: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_ACCEPTABLE,
            message: description.into(),
            shape: Shape::Webob,
        }
    }
    /// 404 for a path that does not exist (or not at this version).
    pub fn no_such_path() -> Self {
        Self::webob(StatusCode::NOT_FOUND, "")
    }
    /// An error in webob's `code`/`title`/`description` format.
    pub fn webob(status: StatusCode, description: impl Into<String>) -> Self {
        ApiError {
            status,
            message: description.into(),
            shape: Shape::Webob,
        }
    }
    /// 405 for a method the path does not have.
    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "The method specified is not allowed for this resource.".into(),
            shape: Shape::Webob,
        }
    }
    /// 401 (HTTP basic auth).
    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "This server could not verify that you are authorized to access the document you requested.".into(),
            shape: Shape::Webob,
        }
    }
    /// 500 with a generic message (the detail goes to the log).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred; see the server log.",
        )
    }
    /// The status.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The message given to the client.
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The body: `{"error_message": "<inner JSON>"}`, with the inner document
    /// formatted as Python's `json.dumps` does (`", "` and `": "` separators).
    pub fn body(&self) -> String {
        let msg = serde_json::to_string(&self.message).unwrap_or_else(|_| "\"\"".into());
        let inner = match self.shape {
            Shape::Fault => {
                let code = if self.status.is_server_error() {
                    "Server"
                } else {
                    "Client"
                };
                format!(
                    "{{\"faultcode\": \"{code}\", \"faultstring\": {msg}, \"debuginfo\": null}}"
                )
            }
            Shape::Webob => format!(
                "{{\"code\": {}, \"title\": \"{}\", \"description\": {msg}}}",
                self.status.as_u16(),
                self.status.canonical_reason().unwrap_or("Error")
            ),
        };
        let outer = serde_json::json!({ "error_message": inner });
        outer.to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.extensions_mut().insert(Formatted);
        resp
    }
}

fn driver_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidParameter | ErrorKind::MissingParameter | ErrorKind::Unsupported => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::NotFound => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict | ErrorKind::Busy => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ironic_core::Error> for ApiError {
    fn from(e: ironic_core::Error) -> Self {
        use ironic_core::Error as E;
        let status = match &e {
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::NodeLocked { .. } | E::Conflict(_) => StatusCode::CONFLICT,
            E::InvalidState { .. } | E::Invalid(_) | E::InMaintenance(_) => StatusCode::BAD_REQUEST,
            E::Protected(_) => StatusCode::FORBIDDEN,
            E::Driver(d) => driver_status(d.kind()),
            E::NoFreeWorker | E::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            E::Store(detail) => return ApiError::internal(format!("database error: {detail}")),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ironic_core::store::StoreError> for ApiError {
    fn from(e: ironic_core::store::StoreError) -> Self {
        use ironic_core::store::StoreError as S;
        match e {
            S::NotFound { .. } => ApiError::not_found(e.to_string()),
            S::Duplicate(m) => ApiError::conflict(m),
            S::Locked { .. } => ApiError::conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironic_core::DriverError;

    fn inner(e: &ApiError) -> serde_json::Value {
        let outer: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        serde_json::from_str(outer["error_message"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn body_is_double_encoded_like_ironic() {
        let e = ApiError::from(ironic_core::Error::InvalidState {
            action: "active".into(),
            node: "n1".into(),
            state: "enroll".into(),
        });
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            r#"{"error_message":"{\"faultcode\": \"Client\", \"faultstring\": \"The requested action \\\"active\\\" can not be performed on node \\\"n1\\\" while it is in state \\\"enroll\\\".\", \"debuginfo\": null}"}"#
        );
        let i = inner(&e);
        assert_eq!(i["faultcode"], "Client");
        assert!(i["debuginfo"].is_null());
    }

    #[test]
    fn version_406_uses_code_title_description() {
        let e = ApiError::version_not_acceptable("Version 1.999 was requested");
        let i = inner(&e);
        assert_eq!(i["code"], 406);
        assert_eq!(i["title"], "Not Acceptable");
        assert_eq!(i["description"], "Version 1.999 was requested");
    }

    #[test]
    fn core_errors_map_to_statuses() {
        use ironic_core::Error as E;
        let cases: Vec<(E, u16)> = vec![
            (E::node_not_found("x"), 404),
            (
                E::NodeLocked {
                    node: "n".into(),
                    holder: "h".into(),
                },
                409,
            ),
            (E::Conflict("dup".into()), 409),
            (E::Invalid("bad".into()), 400),
            (E::InMaintenance("n".into()), 400),
            (E::Driver(DriverError::invalid("bad key")), 400),
            (E::Driver(DriverError::unsupported("no")), 400),
            (
                E::Driver(DriverError::new(ErrorKind::Unreachable, "down")),
                500,
            ),
            (E::NoFreeWorker, 503),
            (E::ShuttingDown, 503),
            (E::Store("disk I/O error at /secret/path".into()), 500),
        ];
        for (e, code) in cases {
            let a = ApiError::from(e);
            assert_eq!(a.status().as_u16(), code, "{a}");
            if code == 500 {
                assert_eq!(inner(&a)["faultcode"], "Server");
            }
        }
        // store detail stays in the log
        let a = ApiError::from(E::Store("disk I/O error at /secret/path".into()));
        assert!(!a.body().contains("/secret/path"));
    }
}
