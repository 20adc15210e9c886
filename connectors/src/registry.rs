//! The connector registry: every kind a `[[connectors]]` entry can name. Adding a kind is one
//! module implementing [`Connector`] plus one line in the `registry!` list below; the
//! configuration (`kind = "…"`), the checks at start, the start banner, the status and the
//! start itself all go through here.

use crate::status::ConnectorStatus;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::RecordSink;

/// What every connector is given when it starts.
pub struct Context {
    /// Where it hands its envelopes (the pipeline).
    pub sink: Arc<dyn RecordSink>,
    /// Person keys for mapping profiles that name persons by key.
    pub keyer: PersonKeyer,
    /// Its status, shared with health and metrics.
    pub status: Arc<ConnectorStatus>,
    /// Turns true when the hub stops.
    pub stop: watch::Receiver<bool>,
}

/// A connector kind's configuration and how it runs.
pub trait Connector: Clone + Send + Sync + 'static {
    /// The `kind` that names it in `[[connectors]]`.
    const KIND: &'static str;
    /// The connector's unique name.
    fn name(&self) -> &str;
    /// The partner system it speaks for.
    fn system(&self) -> &str;
    /// Checks what can be checked before start; the message names the connector and key.
    fn check(&self) -> Result<(), String>;
    /// One line for the start banner: where it reads from.
    fn describe(&self) -> String;
    /// A fresh status for it (with its silence limit, if it has one).
    fn status(&self) -> ConnectorStatus {
        ConnectorStatus::new(self.name().to_owned(), Self::KIND)
    }
    /// Runs until `ctx.stop` turns true, acknowledging its source only after commit.
    fn run(self, ctx: Context) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

macro_rules! registry {
    ($($kind:literal => $variant:ident($config:ty),)*) => {
        /// One `[[connectors]]` entry, by `kind`.
        #[derive(Debug, Clone, serde::Deserialize, PartialEq)]
        #[serde(tag = "kind")]
        pub enum ConnectorConfig {
            $(
                #[doc = concat!("`kind = \"", $kind, "\"`.")]
                #[serde(rename = $kind)]
                $variant($config),
            )*
        }

        /// Every kind the registry knows, as configured.
        pub const KINDS: &[&str] = &[$($kind),*];

        impl ConnectorConfig {
            /// The `kind`.
            pub fn kind(&self) -> &'static str {
                match self { $(ConnectorConfig::$variant(_) => <$config as Connector>::KIND,)* }
            }
            /// The connector's unique name.
            pub fn name(&self) -> &str {
                match self { $(ConnectorConfig::$variant(c) => c.name(),)* }
            }
            /// The partner system it speaks for.
            pub fn system(&self) -> &str {
                match self { $(ConnectorConfig::$variant(c) => c.system(),)* }
            }
            /// Checks its settings before start.
            pub fn check(&self) -> Result<(), String> {
                match self { $(ConnectorConfig::$variant(c) => c.check(),)* }
            }
            /// One line for the start banner.
            pub fn describe(&self) -> String {
                match self { $(ConnectorConfig::$variant(c) => c.describe(),)* }
            }
            /// A fresh status for it.
            pub fn status(&self) -> ConnectorStatus {
                match self { $(ConnectorConfig::$variant(c) => c.status(),)* }
            }
            /// Starts it on the runtime.
            pub fn spawn(self, ctx: Context) -> tokio::task::JoinHandle<()> {
                match self { $(ConnectorConfig::$variant(c) => tokio::spawn(c.run(ctx)),)* }
            }
        }
    };
}

registry! {
    "amqp" => Amqp(crate::amqp::AmqpConfig),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_once_and_parses_from_its_kind() {
        let mut seen = std::collections::HashSet::new();
        assert!(KINDS.iter().all(|k| seen.insert(*k)), "{KINDS:?}");
        let amqp: ConnectorConfig = serde_json::from_str(
            r#"{"kind":"amqp","name":"q","system":"s","url":"amqp://127.0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(amqp.kind(), "amqp");
        assert_eq!((amqp.name(), amqp.system()), ("q", "s"));
        assert!(amqp.check().is_ok());
        let unknown = serde_json::from_str::<ConnectorConfig>(r#"{"kind":"ftp","name":"q"}"#);
        assert!(unknown.unwrap_err().to_string().contains("ftp"));
    }
}
