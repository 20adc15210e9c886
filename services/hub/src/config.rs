//! Typed configuration (DESIGN §6.3): one TOML file plus `TRAINHUB_<SECTION>__<KEY>`
//! environment overrides. Unknown keys are errors that name the key; defaults run embedded.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners and the data folder.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where records are stored.
    #[serde(default)]
    pub store: StoreConfig,
    /// The rules file.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The secret behind `person_key`.
    #[serde(default)]
    pub identity: IdentityConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Ops HTTP listen address.
    pub http_addr: SocketAddr,
    /// Data folder for the embedded store and generated secrets.
    pub data_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grpc_addr: "127.0.0.1:50051".parse().expect("valid"),
            http_addr: "127.0.0.1:8080".parse().expect("valid"),
            data_dir: PathBuf::from("./trainhub-data"),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://…` or `postgres://…`; defaults to `trainhub.db` in the data folder.
    pub url: Option<String>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A policy TOML file; the built-in default (DESIGN §5) when absent.
    pub file: Option<PathBuf>,
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// File holding the hex secret for `person_key`; generated in the data folder on first
    /// start when absent. Every hub sharing a store must use the same secret.
    pub secret_file: Option<PathBuf>,
}

impl Config {
    /// Loads `file` (if any) and applies the environment overrides in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut doc: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TRAINHUB_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            // A value that parses as TOML (a number, a boolean, an array) is taken as such.
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let table = doc
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match table {
                toml::Value::Table(t) => {
                    t.insert(key, parsed);
                }
                _ => anyhow::bail!("environment variable {name}: [{section}] is not a table"),
            }
        }
        let source = file.map_or("environment".to_owned(), |p| p.display().to_string());
        Config::deserialize(toml::Value::Table(doc))
            .with_context(|| format!("invalid configuration in {source}"))
    }

    /// The store URL in force.
    pub fn store_url(&self) -> String {
        self.store.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("trainhub.db").display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_embedded() {
        let c = Config::load(None, std::iter::empty()).unwrap();
        assert_eq!(c.server.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.store_url(), "sqlite://./trainhub-data/trainhub.db");
    }

    #[test]
    fn env_overrides_and_unknown_keys() {
        let env = [
            (
                "TRAINHUB_SERVER__GRPC_ADDR".to_owned(),
                "127.0.0.1:6000".to_owned(),
            ),
            (
                "TRAINHUB_STORE__URL".to_owned(),
                "postgres://x@h/db".to_owned(),
            ),
            (
                "TRAINHUB_TEST_PG".to_owned(),
                "ignored: no section".to_owned(),
            ),
        ];
        let c = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(c.server.grpc_addr.port(), 6000);
        assert_eq!(c.store_url(), "postgres://x@h/db");
        let bad = [("TRAINHUB_SERVER__GRPC_ADRESS".to_owned(), "x".to_owned())];
        let err = format!("{:#}", Config::load(None, bad.into_iter()).unwrap_err());
        assert!(err.contains("grpc_adress"), "{err}");
    }
}
