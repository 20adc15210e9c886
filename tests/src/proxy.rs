//! A TCP relay standing in for one node of a broker cluster: it forwards to the real broker
//! until it is cut, when it stops listening and drops every connection through it — to the
//! hub, exactly as a node going away.

use std::net::SocketAddr;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One stand-in node.
pub struct Node {
    /// Where the hub connects.
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Listens on a port of its own and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accept = tokio::spawn(async move {
            // Dropped with this task when the node is cut, aborting every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Node { addr, accept }
    }

    /// The test broker's URL with this node's address in place of the broker's.
    pub fn amqp_url(&self) -> String {
        let url = crate::broker::amqp_url();
        url.replacen(&host_port(&url), &self.addr.to_string(), 1)
    }

    /// The node goes away: no new connections, every open one dropped.
    pub fn cut(&self) {
        self.accept.abort();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The `host:port` of an `amqp://user:pass@host:port/vhost` URL.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The test broker's socket address.
pub async fn broker_addr() -> SocketAddr {
    tokio::net::lookup_host(host_port(&crate::broker::amqp_url()))
        .await
        .expect("broker address resolves")
        .next()
        .expect("an address")
}
