//! The error answer of every endpoint: a status and a one-line text message.

use std::fmt;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::id::CursorError;
use crate::journal::{JournalError, KeyError};
use crate::params::ParamError;

/// A request the server refuses, with the status and message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response()
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

impl From<CursorError> for ApiError {
    fn from(err: CursorError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

impl From<ParamError> for ApiError {
    fn from(err: ParamError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

impl From<JournalError> for ApiError {
    fn from(err: JournalError) -> Self {
        let status = match err {
            JournalError::Done { .. } | JournalError::EpochChanged { .. } => StatusCode::CONFLICT,
            JournalError::BadEvent { .. } => StatusCode::BAD_REQUEST,
            JournalError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.to_string())
    }
}
