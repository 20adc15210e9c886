//! Generic clients work: a Python `grpcio` client lists the services through server reflection
//! and reads `SERVING` from the health service (tests/python/reflection_check.py).

use trainhub_tests::{Backend, TestHub};

#[tokio::test]
async fn python_grpcio_reflection_and_health() {
    let has_grpc = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_reflection, grpc_health"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_grpc {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install grpcio, grpcio-reflection and grpcio-health-checking"
        );
        eprintln!(
            "SKIPPED: python3 with grpcio, grpcio-reflection, grpcio-health-checking not found"
        );
        return;
    }
    let hub = TestHub::start(Backend::Sqlite).await.expect("sqlite");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/reflection_check.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(hub.grpc_addr.to_string())
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "trainhub.v1.IngestService",
        "trainhub.v1.DossierService",
        "health: SERVING",
        "v1alpha: ok",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    hub.stop().await;
}

/// The `grpc.reflection.v1` protocol (the Python package speaks only v1alpha), through
/// tonic-reflection's own client.
#[tokio::test]
async fn reflection_v1_lists_the_services() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let hub = TestHub::start(Backend::Sqlite).await.expect("sqlite");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", hub.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected response {response:?}")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "trainhub.v1.IngestService",
        "trainhub.v1.DossierService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    hub.stop().await;
}
