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
    // The broker password the configurations refer to as ${BROKER_PASSWORD}.
    let mut env = vec![("BROKER_PASSWORD".to_owned(), "from-a-secret".to_owned())];
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
        assert!(
            c.addresses()
                .iter()
                .all(|a| a.contains("trainhub:from-a-secret@")),
            "the broker password comes from the environment"
        );
        // Every call needs a token, each read from a mounted secret.
        let principals = config.partners.len() + config.readers.len();
        assert!(principals >= 2, "{}: principals", file.display());
        assert!(config.partners.iter().all(|p| p.token_file.is_some()));
        assert!(config.readers.iter().all(|r| r.token_file.is_some()));
    }
    let unset = Config::load(Some(&deploy("config/trainhub.toml")), std::iter::empty());
    let err = format!("{:#}", unset.unwrap_err());
    assert!(
        err.contains("BROKER_PASSWORD") && err.contains("urls[0]`"),
        "{err}"
    );
}

/// Beyond loopback a hub needs principals, whatever the configuration says; and, without TLS,
/// the operator's word that the network is private.
#[tokio::test]
async fn beyond_loopback_only_with_principals_and_tls_or_a_private_network() {
    let Some(test_store) = trainhub_tests::TestStore::new(trainhub_tests::Backend::Sqlite).await
    else {
        return;
    };
    let mut config = trainhub_tests::TestHub::config_for(&test_store);
    config.server.grpc_addr = "0.0.0.0:0".parse().unwrap();
    let refusal = |config: &trainhub::config::Config| {
        let config = config.clone();
        async move {
            let refused = trainhub::startup::Application::build(&config).await;
            format!("{:#}", refused.err().expect("refused"))
        }
    };
    // Open: refused even on a network declared private, with every way out named.
    config.server.allow_plaintext_network = true;
    let open = refusal(&config).await;
    for fix in [
        "no partners or readers",
        "trainhub token",
        "token_file",
        "loopback",
    ] {
        assert!(open.contains(fix), "{fix}: {open}");
    }
    // With a reader whose token is in a file: plain text still needs the operator's word.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token-ops");
    std::fs::write(&token_file, format!("{}\n", "7".repeat(64))).unwrap();
    config.readers = vec![trainhub::config::ReaderConfig {
        name: "ops".into(),
        token_sha256: None,
        token_file: Some(token_file),
        roles: vec!["health:read".into()],
        authorities: Vec::new(),
    }];
    config.server.allow_plaintext_network = false;
    let plain = refusal(&config).await;
    for fix in ["without TLS", "tls_cert_file", "allow_plaintext_network"] {
        assert!(plain.contains(fix), "{fix}: {plain}");
    }
    config.server.allow_plaintext_network = true;
    let app = trainhub::startup::Application::build(&config)
        .await
        .expect("builds with principals on a private network");
    assert!(app.grpc_addr().ip().is_unspecified());
}
