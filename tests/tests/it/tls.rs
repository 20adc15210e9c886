//! TLS and client certificates (issue 6): gRPC over TLS with certificates made in the test
//! (`rcgen`). A client certificate signed by the configured CA authenticates its partner, by
//! subject common name, and speaks for that partner's system only; a self-signed one is
//! refused at the handshake; a TLS client with neither certificate nor token is
//! `UNAUTHENTICATED`.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;
use trainhub::config::{Digests, PartnerConfig, ReaderConfig};
use trainhub_api::auth::token_digest;
use trainhub_connectors::synthetic::{self, HR, SCHOOL};
use trainhub_proto::v1 as pb;
use trainhub_tests::{http_get, http_get_on, Backend, TestHub, TestStore};

struct Pki {
    ca_pem: String,
    server: (String, String),
    partner: (String, String),
    stranger: (String, String),
}

fn leaf(cn: &str, names: Vec<String>, issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "trainhub test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let server = leaf("hub", vec!["localhost".into()], &issuer);
    let partner = leaf("hr-system", Vec::new(), &issuer);
    // The same name, but signed by nobody the hub trusts.
    let stranger = {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "hr-system");
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    };
    Pki {
        ca_pem,
        server,
        partner,
        stranger,
    }
}

async fn channel(
    hub: &TestHub,
    ca_pem: &str,
    client: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = client {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://localhost:{}", hub.grpc_addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_the_ca_authenticate_their_partner() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let pki = pki();
    let dir = test_store.dir.path().to_owned();
    let (cert, key, ca) = (
        write(&dir, "server.pem", &pki.server.0),
        write(&dir, "server.key", &pki.server.1),
        write(&dir, "ca.pem", &pki.ca_pem),
    );
    let hub = TestHub::start_with(test_store, |c| {
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
        c.server.tls_client_ca_file = Some(ca);
        c.partners = vec![PartnerConfig {
            name: "hr-system".into(),
            system: HR.into(),
            max_silence_seconds: None,
            token_sha256: None,
            token_file: None,
            roles: vec!["ingest".into()],
            records_per_second: None,
            cert_subject: Some("hr-system".into()),
        }];
    })
    .await;
    let population = synthetic::population(93, 5);
    let hr = trainhub_tests::of_system(&population.records, HR);
    let school = trainhub_tests::of_system(&population.records, SCHOOL)[0].clone();

    // Signed by the CA: accepted as hr-system, and held to its system.
    let trusted = channel(&hub, &pki.ca_pem, Some(&pki.partner))
        .await
        .expect("TLS with a client certificate");
    let mut ingest = pb::ingest_service_client::IngestServiceClient::new(trusted);
    let mut records = hr.clone();
    records.push(school);
    let outcomes = ingest
        .submit(pb::SubmitRequest { records })
        .await
        .expect("the certificate authenticates")
        .into_inner()
        .outcomes;
    let (mine, other) = outcomes.split_at(hr.len());
    assert!(mine
        .iter()
        .all(|o| o.status() != pb::RecordStatus::Rejected));
    assert_eq!(other[0].reason_code, "SYSTEM_MISMATCH");

    // Self-signed: the handshake or the first call fails; nothing reaches the service.
    let refused = match channel(&hub, &pki.ca_pem, Some(&pki.stranger)).await {
        Err(_) => true,
        Ok(ch) => pb::ingest_service_client::IngestServiceClient::new(ch)
            .submit(pb::SubmitRequest {
                records: hr.clone(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a self-signed certificate is refused");

    // TLS without a certificate or a token: UNAUTHENTICATED.
    let anonymous = channel(&hub, &pki.ca_pem, None).await.expect("plain TLS");
    let status = pb::ingest_service_client::IngestServiceClient::new(anonymous)
        .submit(pb::SubmitRequest { records: hr })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    hub.stop().await;
}

/// `GET path` over HTTPS on `port` of loopback, trusting only `ca_pem`, as `localhost`.
async fn https_get(
    port: u16,
    ca_pem: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    http_get_on(tls, &format!("localhost:{port}"), path, headers).await
}

const OPS_TOKEN: &str = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_port_speaks_https_with_the_hub_certificate() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let pki = pki();
    let dir = test_store.dir.path().to_owned();
    let (cert, key) = (
        write(&dir, "server.pem", &pki.server.0),
        write(&dir, "server.key", &pki.server.1),
    );
    // Every interface, without allow_plaintext_network: allowed because the port has TLS and
    // the hub has principals.
    let hub = TestHub::start_with(test_store, |c| {
        c.server.http_addr = "0.0.0.0:0".parse().unwrap();
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
        c.readers = vec![ReaderConfig {
            name: "ops".into(),
            token_sha256: Some(Digests::One(token_digest(OPS_TOKEN))),
            token_file: None,
            roles: vec!["health:read".into()],
            authorities: Vec::new(),
        }];
    })
    .await;
    assert!(hub.http_addr.ip().is_unspecified());
    let port = hub.http_addr.port();

    let (code, body) = https_get(port, &pki.ca_pem, "/healthz", &[]).await.unwrap();
    assert_eq!((code, body.trim()), (200, "ok"));
    let (code, _) = https_get(port, &pki.ca_pem, "/api/status", &[])
        .await
        .unwrap();
    assert_eq!(code, 401, "the guarded data needs a token, over TLS too");
    let bearer = format!("Bearer {OPS_TOKEN}");
    let (code, body) = https_get(
        port,
        &pki.ca_pem,
        "/api/status",
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("connectors"), "{body}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let plain = http_get(loopback, "/healthz").await;
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP is not served: {plain:?}"
    );
    // A client that does not trust the hub's CA fails the handshake.
    let other_ca = self::pki().ca_pem;
    assert!(https_get(port, &other_ca, "/healthz", &[]).await.is_err());
    hub.stop().await;
}
