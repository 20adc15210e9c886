//! The deploy kit's hub settings are ones the hub accepts (issue 8): the compose file's and the
//! ConfigMap's `trainhub.toml`, with every `TRAINHUB_…` variable the Dockerfile, compose file
//! and Deployment set. (`deploy/validate.sh`, run by CI, checks the files against the Compose
//! and Kubernetes schemas.)

use std::path::{Path, PathBuf};
use trainhub::config::{Config, ConnectorConfig};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Every `TRAINHUB_<SECTION>__<KEY>` named in `text`, with a value of the right shape.
fn variables(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("TRAINHUB_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if !name.contains("__") {
            continue;
        }
        let value = if name.ends_with("_ADDR") {
            "0.0.0.0:50051"
        } else if name.ends_with("__ALLOW_PLAINTEXT_NETWORK") {
            "true"
        } else {
            "/some/value"
        };
        out.push((name, value.to_owned()));
    }
    out
}

/// The `trainhub.toml` embedded in the ConfigMap (a YAML block scalar, indented four spaces).
fn configmap_toml() -> String {
    let yaml = std::fs::read_to_string(deploy("k8s/configmap.yaml")).unwrap();
    let block = yaml
        .split_once("trainhub.toml: |\n")
        .expect("the ConfigMap holds trainhub.toml")
        .1;
    block
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_deploy_configurations_load() {
    let mut env = Vec::new();
    for file in ["Dockerfile", "compose.yaml", "k8s/deployment.yaml"] {
        env.extend(variables(&std::fs::read_to_string(deploy(file)).unwrap()));
    }
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    for needed in [
        "TRAINHUB_STORE__URL",
        "TRAINHUB_IDENTITY__SECRET_FILE",
        "TRAINHUB_IDENTITY__DATA_KEY_FILE",
        "TRAINHUB_SERVER__INSTANCE",
        "TRAINHUB_SERVER__GRPC_ADDR",
        "TRAINHUB_SERVER__ALLOW_PLAINTEXT_NETWORK",
    ] {
        assert!(names.contains(&needed), "{needed} set somewhere: {names:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let from_configmap = dir.path().join("configmap.toml");
    std::fs::write(&from_configmap, configmap_toml()).unwrap();
    for file in [deploy("config/trainhub.toml"), from_configmap] {
        let config = Config::load(Some(&file), env.clone().into_iter())
            .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        let nodes = 1 + config.events.fallback_urls.len();
        assert_eq!(nodes, 3, "{}: events reach all three nodes", file.display());
        let ConnectorConfig::Amqp(c) = &config.connectors[0];
        assert_eq!(c.queue_type.as_deref(), Some("quorum"));
        assert_eq!(c.addresses().len(), 3);
        assert_eq!(config.server.instance.as_deref(), Some("/some/value"));
        assert!(config.server.allow_plaintext_network);
    }
}

/// Open (no principals), the hub listens on loopback only — unless the operator says the
/// network is private, as the compose file and the Deployment do.
#[tokio::test]
async fn beyond_loopback_only_when_the_network_is_declared_private() {
    let Some(test_store) = trainhub_tests::TestStore::new(trainhub_tests::Backend::Sqlite).await
    else {
        return;
    };
    let mut config = trainhub_tests::TestHub::config_for(&test_store);
    config.server.grpc_addr = "0.0.0.0:0".parse().unwrap();
    let refused = trainhub::startup::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{refused:#}").contains("allow_plaintext_network"),
        "{refused:#}"
    );
    config.server.allow_plaintext_network = true;
    let app = trainhub::startup::Application::build(&config)
        .await
        .expect("builds when allowed");
    assert!(app.grpc_addr().ip().is_unspecified());
}
