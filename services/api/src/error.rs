//! The one mapping from domain and store errors to `tonic::Status`.

use tonic::Status;
use trainhub_model::Rejection;
use trainhub_pipeline::QueryError;

/// An API-level failure: the pipeline's [`QueryError`] (an invalid request, nothing under the
/// key, the store), carried to its one `Status`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub QueryError);

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        ApiError(QueryError::Invalid(r))
    }
}

impl From<trainhub_store::Error> for ApiError {
    fn from(e: trainhub_store::Error) -> ApiError {
        ApiError(QueryError::Store(e))
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e.0 {
            QueryError::Invalid(r) => {
                Status::invalid_argument(format!("{}: {}", r.code, r.describe()))
            }
            QueryError::NotFound(what) => Status::not_found(what),
            e @ QueryError::Waiting { .. } => Status::deadline_exceeded(e.to_string()),
            QueryError::Store(e) if e.is_transient() => {
                tracing::warn!(error = %e, "Store unavailable.");
                Status::unavailable(format!("store unavailable, retry later: {e}"))
            }
            QueryError::Store(e) => {
                tracing::error!(error = %e, "Store failed.");
                Status::internal(format!("store error: {e}"))
            }
        }
    }
}
