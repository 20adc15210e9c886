//! Commands that talk to a running hub over gRPC (`review`, `submit`, `dossier --hub`,
//! `status`): where the hub is, and the token each request carries.

use crate::config::Config;
use anyhow::{Context, Result};
use tonic::transport::Channel;

/// `--hub` and `--token`, shared by the commands that ask a running hub.
#[derive(Debug, clap::Args, Clone)]
pub struct HubArgs {
    /// The hub's gRPC URL; default `http://` + the configured `grpc_addr`.
    #[arg(long)]
    pub hub: Option<String>,
    /// Bearer token (the same tokens as any gRPC client), when the hub has principals.
    #[arg(long, env = "TRAINHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl HubArgs {
    /// The hub's URL: `--hub`, or the configured gRPC address.
    pub fn url(&self, config: &Config) -> String {
        self.hub
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.grpc_addr))
    }

    /// A connection to the hub, or an error that says where nothing answered.
    pub async fn connect(&self, config: &Config) -> Result<Channel> {
        let url = self.url(config);
        Channel::from_shared(url.clone())
            .with_context(|| format!("`{url}` is not a hub URL (e.g. http://127.0.0.1:50051)"))?
            .connect()
            .await
            .with_context(|| format!("no hub answers at {url} (is `trainhub serve` running?)"))
    }

    /// `message` as a request carrying the token.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>> {
        with_token(message, self.token.as_deref())
    }
}

/// A request to a running hub, carrying `token` as `authorization: Bearer …` when given.
pub(crate) fn with_token<T>(message: T, token: Option<&str>) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .context("the token must be printable ASCII")?,
        );
    }
    Ok(request)
}

/// A gRPC error as the hub said it, for a person: the code and the hub's message.
pub fn refused(status: tonic::Status) -> anyhow::Error {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => " (give --token or TRAINHUB_TOKEN)",
        _ => "",
    };
    anyhow::anyhow!(
        "the hub answered {:?}: {}{hint}",
        status.code(),
        status.message()
    )
}
