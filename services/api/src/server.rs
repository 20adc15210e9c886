//! The gRPC server: trainhub services plus `grpc.health.v1.Health` and server reflection
//! (`v1` and `v1alpha`, since common clients still speak the latter).

use crate::auth::{Principals, Role};
use crate::dossier::Dossiers;
use crate::ingest::Ingest;
use crate::limits::Limits;
use crate::review::Review;
use crate::sync_health::SyncHealth;
use std::future::Future;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use trainhub_pipeline::Pipeline;
use trainhub_proto::v1::{
    dossier_service_server::DossierServiceServer, ingest_service_server::IngestServiceServer,
    review_service_server::ReviewServiceServer,
    sync_health_service_server::SyncHealthServiceServer,
};

/// Accepted connections with Nagle's algorithm off: small unary replies would otherwise wait
/// for the peer's delayed ACK (tens of milliseconds per call).
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// Serves the trainhub gRPC API on `listener` until `shutdown` completes; in-flight calls are
/// allowed to finish.
/// Every trainhub service authenticates its callers with `principals` (open when there are
/// none); health and reflection answer anyone.
pub async fn serve(
    listener: TcpListener,
    pipeline: Pipeline,
    status: std::sync::Arc<dyn crate::sync_health::StatusSource>,
    principals: Principals,
    limits: Limits,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IngestServiceServer<Ingest>>()
        .await;
    health_reporter
        .set_serving::<DossierServiceServer<Dossiers>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trainhub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor set is valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trainhub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor set is valid");
    let ingest = InterceptedService::new(
        IngestServiceServer::new(Ingest::with_limits(pipeline.clone(), limits.clone()))
            .max_decoding_message_size(limits.max_message_bytes),
        principals.interceptor(&[Role::Ingest]),
    );
    // Coverage of a whole province carries its RED list; allow large answers.
    health_reporter
        .set_serving::<SyncHealthServiceServer<SyncHealth>>()
        .await;
    // Dead letters carry their payloads; a page of them may be large.
    let sync_health = InterceptedService::new(
        SyncHealthServiceServer::new(SyncHealth::new(pipeline.clone(), status))
            .max_encoding_message_size(64 * 1024 * 1024),
        principals.interceptor(&[Role::HealthRead, Role::DlqReplay, Role::Ingest]),
    );
    health_reporter
        .set_serving::<ReviewServiceServer<Review>>()
        .await;
    let review = InterceptedService::new(
        ReviewServiceServer::new(Review::new(pipeline.clone())),
        principals.interceptor(&[Role::ReviewWrite]),
    );
    let dossiers = InterceptedService::new(
        DossierServiceServer::new(Dossiers::new(pipeline))
            .max_encoding_message_size(256 * 1024 * 1024),
        principals.interceptor(&[Role::DossierRead, Role::CoverageRead]),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ingest)
        .add_service(dossiers)
        .add_service(sync_health)
        .add_service(review)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
}
