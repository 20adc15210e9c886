//! The one mapping from domain and store errors to `tonic::Status`.

use tonic::Status;
use trainhub_model::Rejection;

/// An API-level failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is invalid.
    #[error("{0}")]
    Invalid(#[from] Rejection),
    /// Nothing known under the given key.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] trainhub_store::Error),
}

impl From<trainhub_pipeline::QueryError> for ApiError {
    fn from(e: trainhub_pipeline::QueryError) -> ApiError {
        use trainhub_pipeline::QueryError as Q;
        match e {
            Q::Invalid(r) => ApiError::Invalid(r),
            Q::NotFound(what) => ApiError::NotFound(what),
            Q::Store(e) => ApiError::Store(e),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::Invalid(r) => {
                Status::invalid_argument(format!("{}: {}", r.code, r.describe()))
            }
            ApiError::NotFound(what) => Status::not_found(what),
            ApiError::Store(e) if e.is_transient() => {
                tracing::warn!(error = %e, "Store unavailable.");
                Status::unavailable(format!("store unavailable, retry later: {e}"))
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "Store failed.");
                Status::internal(format!("store error: {e}"))
            }
        }
    }
}
