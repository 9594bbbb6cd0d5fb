//! Errors as OpenAI's clients read them: a status and `{"error": {"message", "type",
//! "param", "code"}}`, the message saying what to do.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// For a person: what went wrong and what to do.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `authentication_error`, ...).
    pub kind: &'static str,
    /// A short code for programs (`invalid_api_key`, `rate_limit_exceeded`, ...).
    pub code: &'static str,
    /// For 429: when to try again.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: &str) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
            kind,
            code,
            retry_after: None,
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(code: &'static str, message: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// 401: no token, or not the right one.
    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            message,
        )
    }

    /// 403: a web page, or a name that is not this machine.
    pub fn forbidden(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 404.
    pub fn not_found(message: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            message,
        )
    }

    /// 405: a known endpoint, the wrong method.
    pub fn method_not_allowed(message: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            message,
        )
    }

    /// 413: the body or the audio is too long.
    pub fn too_large(message: &str) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "too_large",
            message,
        )
    }

    /// 429: too many requests; try again after `wait`.
    pub fn rate_limited(wait: Duration) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            &format!(
                "Too many requests: Sotto's API takes a limited number per second. Try again in {} s",
                wait.as_secs().max(1)
            ),
        );
        e.retry_after = Some(wait);
        e
    }

    /// 500 or 503: an engine failed.
    pub fn engine(status: StatusCode, message: &str) -> ApiError {
        ApiError::new(status, "server_error", "engine_error", message)
    }

    /// A JSON body that could not be taken: 413 over `limit` bytes, else 400 with what
    /// is wrong in it.
    pub fn from_json(rejection: &JsonRejection, limit: usize) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(&format!(
                "The request body is larger than {} KB",
                limit >> 10
            ))
        } else {
            ApiError::bad_request("invalid_json", &rejection.body_text())
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": null,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client never comes back too early.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
