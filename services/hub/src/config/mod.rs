//! Typed configuration (DESIGN §6.3): one TOML file plus `TRAINHUB_<SECTION>__<KEY>`
//! environment overrides. Unknown keys are errors that name the key; defaults run embedded.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
pub use trainhub_connectors::amqp::relay::EventsConfig;
pub use trainhub_connectors::registry::ConnectorConfig;

mod expand;
mod principals;
pub use principals::{AuthorityConfig, Digests, PartnerConfig, ReaderConfig};

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
    /// Outbound `dossier.changed` events.
    #[serde(default)]
    pub events: EventsConfig,
    /// Sources of partner records besides gRPC (`[[connectors]]`).
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
    /// Partner systems expected over gRPC (`[[partners]]`).
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    /// `[[readers]]`: systems and people that read dossiers, coverage or sync health.
    #[serde(default)]
    pub readers: Vec<ReaderConfig>,
    /// `[[authorities]]`: the tree of cadre-management authorities, so that a reader scoped to
    /// one also reads the persons of those below it.
    #[serde(default)]
    pub authorities: Vec<AuthorityConfig>,
    /// Sizes, deadlines and concurrency per call.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Metrics and traces export.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[limits]`: what one call may carry and take.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most records in one `SubmitRequest` (default 10,000).
    pub max_batch_records: usize,
    /// Largest gRPC message, in bytes (default 16 MiB).
    pub max_message_bytes: usize,
    /// Seconds before a call is cancelled with `DEADLINE_EXCEEDED` (default 120).
    pub request_timeout_seconds: u64,
    /// Calls served at once per connection; more wait (default 32).
    pub concurrency_per_connection: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = trainhub_api::limits::Limits::default();
        LimitsConfig {
            max_batch_records: d.max_batch_records,
            max_message_bytes: d.max_message_bytes,
            request_timeout_seconds: d.request_timeout.as_secs(),
            concurrency_per_connection: d.concurrency_per_connection,
        }
    }
}

impl LimitsConfig {
    /// The limits the server applies.
    pub fn limits(&self) -> trainhub_api::limits::Limits {
        trainhub_api::limits::Limits {
            max_batch_records: self.max_batch_records,
            max_message_bytes: self.max_message_bytes,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_seconds),
            concurrency_per_connection: self.concurrency_per_connection,
        }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint (e.g. `http://otel-collector:4317`) for metrics and traces; off when
    /// absent.
    pub otlp_endpoint: Option<String>,
    /// Whether `/metrics` is served (default true).
    #[serde(default = "yes")]
    pub prometheus: bool,
}

fn yes() -> bool {
    true
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
    /// This hub instance's id in connector status; unique among the hubs sharing a store.
    /// Default `<HOSTNAME>-<process id>` (the pod name on Kubernetes).
    pub instance: Option<String>,
    /// PEM certificate chain for gRPC over TLS (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificate(s) that sign partners' client certificates (mTLS). A client may
    /// still authenticate with a token instead; a certificate it presents must verify.
    pub tls_client_ca_file: Option<PathBuf>,
    /// Lets the hub listen beyond loopback without TLS. Only for a private network that
    /// nothing untrusted can reach (the compose network behind Envoy, a namespace behind a
    /// NetworkPolicy). Off by default. It never lets a hub without principals (tokens or
    /// client certificates) listen beyond loopback.
    pub allow_plaintext_network: bool,
    /// Whether this hub runs the projector (keeps each person's dossier state current). On by
    /// default; turn it off only on hubs that share a store with one that projects.
    pub project: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grpc_addr: "127.0.0.1:50051".parse().expect("valid"),
            http_addr: "127.0.0.1:8080".parse().expect("valid"),
            data_dir: PathBuf::from("./trainhub-data"),
            instance: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            allow_plaintext_network: false,
            project: true,
        }
    }
}

impl ServerConfig {
    /// The instance id in force.
    pub fn instance(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "hub".into()),
                std::process::id()
            )
        })
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
    /// A policy TOML file; the built-in default (docs/design/rules.md) when absent.
    pub file: Option<PathBuf>,
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// File holding the hex secret for `person_key`; generated in the data folder on first
    /// start when absent. Every hub sharing a store must use the same secret.
    pub secret_file: Option<PathBuf>,
    /// File holding the data keyring that seals personal data at rest (`id:hex` entries, the
    /// first seals); `data.keys` in the data folder, generated on first start, when absent.
    /// Every hub sharing a store must hold the keys its rows are sealed under.
    pub data_key_file: Option<PathBuf>,
    /// The keyring itself, for deployments that pass secrets in the environment
    /// (`TRAINHUB_IDENTITY__DATA_KEYS`, entries separated by commas). Not with `data_key_file`.
    pub data_keys: Option<SecretText>,
}

/// A secret given as text: never shown by `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The 1-based line and column where `span` starts in `text`.
fn line_column(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
    let at = span.map_or(0, |s| s.start).min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Loads `file` (if any) and applies the environment overrides in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config> {
        let env: Vec<(String, String)> = env.collect();
        let mut doc: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                let mut doc: toml::Table = toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?;
                expand::table(&mut doc, "", &env)
                    .with_context(|| format!("in config file {}", path.display()))?;
                doc
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
        let config = match Config::deserialize(toml::Value::Table(doc)) {
            Ok(config) => config,
            Err(merged) => {
                // The file alone, parsed from its text, says where (line and column) when the
                // mistake is in the file rather than in an environment override.
                if let Some(path) = file {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    if let Err(located) = toml::from_str::<Config>(&text) {
                        let same = merged.to_string().contains(located.message());
                        if located.span().is_some() && same {
                            let (line, column) = line_column(&text, located.span());
                            return Err(anyhow::anyhow!(
                                "{}:{line}:{column}: {}",
                                path.display(),
                                located.message()
                            ))
                            .context(format!("invalid configuration in {source}"));
                        }
                    }
                }
                return Err(merged).with_context(|| format!("invalid configuration in {source}"));
            }
        };
        config
            .check()
            .with_context(|| format!("invalid configuration in {source}"))?;
        Ok(config)
    }

    /// Checks what the types cannot: unique connector names, each connector's settings.
    fn check(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for c in &self.connectors {
            if !names.insert(c.name()) {
                anyhow::bail!("two connectors are named `{}`", c.name());
            }
            c.check().map_err(anyhow::Error::msg)?;
        }
        let mut systems = std::collections::HashSet::new();
        for p in &self.partners {
            if !systems.insert(p.system.as_str()) {
                anyhow::bail!("two partners speak for system `{}`", p.system);
            }
        }
        let mut events_urls = self.events.url.iter().chain(&self.events.fallback_urls);
        if let Some(bad) = events_urls.find(|u| !trainhub_connectors::amqp::is_amqp_url(u)) {
            anyhow::bail!("[events] broker URLs must start with amqp:// or amqps://, not `{bad}`");
        }
        if self.events.url.is_none() && !self.events.fallback_urls.is_empty() {
            anyhow::bail!("[events] `fallback_urls` needs `url` (the first node)");
        }
        self.check_principals()?;
        let s = &self.server;
        if s.tls_cert_file.is_some() != s.tls_key_file.is_some() {
            anyhow::bail!("[server] tls_cert_file and tls_key_file go together");
        }
        if s.tls_client_ca_file.is_some() && s.tls_cert_file.is_none() {
            anyhow::bail!("[server] tls_client_ca_file needs tls_cert_file and tls_key_file");
        }
        let l = &self.limits;
        if l.max_batch_records == 0
            || l.max_message_bytes < 1024
            || l.request_timeout_seconds == 0
            || l.concurrency_per_connection == 0
        {
            anyhow::bail!(
                "[limits]: max_batch_records, request_timeout_seconds and \
                 concurrency_per_connection must be at least 1, max_message_bytes at least 1024"
            );
        }
        if self.events.batch == 0 {
            anyhow::bail!("[events] `batch` must be at least 1");
        }
        Ok(())
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

    pub(super) fn load_text(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), std::iter::empty())
    }

    #[test]
    fn amqp_connectors_as_the_design_shows() {
        let c = load_text(
            r#"
            [[connectors]]
            name     = "hr-queue"
            kind     = "amqp"
            system   = "hr-prov"
            url      = "amqp://guest:guest@127.0.0.1:5672/%2f"
            queue    = "trainhub.hr-queue"
            bindings = ["hr-prov.#"]
            prefetch = 500
            format   = "json"
            "#,
        )
        .unwrap();
        let ConnectorConfig::Amqp(a) = &c.connectors[0];
        assert_eq!((a.system.as_str(), a.prefetch), ("hr-prov", 500));

        let twice = r#"
            [[connectors]]
            name = "q"
            kind = "amqp"
            system = "a"
            url = "amqp://h"
            [[connectors]]
            name = "q"
            kind = "amqp"
            system = "b"
            url = "amqp://h"
            "#;
        let err = format!("{:#}", load_text(twice).unwrap_err());
        assert!(err.contains("two connectors are named `q`"), "{err}");
        let typo = "[[connectors]]\nname = \"q\"\nkind = \"amqp\"\nsystem = \"a\"\nurl = \"amqp://h\"\nprefech = 1\n";
        let err = format!("{:#}", load_text(typo).unwrap_err());
        assert!(err.contains("prefech"), "{err}");
        let err = format!(
            "{:#}",
            load_text("[server]\n\ngrpc_adress = \"x\"\n").unwrap_err()
        );
        assert!(
            err.contains("c.toml:3:1: unknown field `grpc_adress`"),
            "{err}"
        );
        let kind = "[[connectors]]\nname = \"q\"\nkind = \"kafka\"\n";
        let err = format!("{:#}", load_text(kind).unwrap_err());
        assert!(err.contains("kafka"), "{err}");
    }
}
