//! The listeners' TLS settings from `[server] tls_*`, read at start so a wrong path stops it
//! with the file's name.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::sync::Arc;

/// The gRPC TLS settings from `[server] tls_*`, reading the PEM files now so a wrong path or
/// an unreadable file stops the start with its name.
pub(super) fn tls_config(config: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let s = &config.server;
    let (Some(cert), Some(key)) = (&s.tls_cert_file, &s.tls_key_file) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading TLS file {}", path.display()))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &s.tls_client_ca_file {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(true);
    }
    Ok(Some(tls))
}

/// The ops port's TLS settings: the certificate and key of `[server] tls_*` (no client
/// certificates: the ops port takes tokens), HTTP/1.1.
pub(super) fn http_tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let s = &config.server;
    let (Some(cert), Some(key)) = (&s.tls_cert_file, &s.tls_key_file) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("TLS certificate {} holds no certificate", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "TLS certificate {} and key {} do not make a pair",
                cert.display(),
                key.display()
            )
        })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// Beyond loopback a hub needs principals (tokens or client certificates) always, and TLS
/// unless the operator declares the network private. The refusal names every way out.
pub(super) fn check_exposure(
    addr: std::net::SocketAddr,
    open: bool,
    has_tls: bool,
    config: &Config,
) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if open {
        anyhow::bail!(
            "refusing to listen on {addr}: no partners or readers have a token or certificate, so \
             anyone who can reach the port could read and write every record. Either give the \
             hub principals (`trainhub token` prints a token and the `token_sha256` \
             line for a [[partners]] or [[readers]] entry, or point `token_file` at a file \
             holding the token), or keep it on loopback (127.0.0.1) behind a proxy that \
             authenticates"
        );
    }
    if has_tls {
        return Ok(());
    }
    if !config.server.allow_plaintext_network {
        anyhow::bail!(
            "refusing to listen on {addr} without TLS: tokens and records would cross the \
             network in plain text. Either set [server] tls_cert_file and tls_key_file (the \
             hub then serves TLS on both ports), or keep the hub on loopback behind a proxy \
             that terminates TLS, or (only on a private network nothing untrusted can reach, \
             e.g. behind the deploy kit's Envoy or a NetworkPolicy) set [server] \
             allow_plaintext_network = true"
        );
    }
    tracing::warn!(%addr, "Listening beyond loopback in plain text: allow_plaintext_network is set.");
    Ok(())
}
