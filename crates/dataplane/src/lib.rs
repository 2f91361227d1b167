//! The data plane: the HTTP proxy and the authoritative DNS listener. Both read the routing
//! snapshot the control plane publishes (an `ArcSwap<RoutingTable>`) and ask the core where
//! traffic goes; neither ever touches the catalog, the engine or the store.

pub mod affinity;
pub mod datagrams;
pub mod dns;
pub mod geo;
pub mod limit;
pub mod load;
pub mod proxy;
pub mod rrl;
pub mod upstream;

pub use proxy::{Proxy, ProxyConfig};

/// The next connection on `listener`; on an error (out of descriptors and the like) it backs
/// off briefly instead of spinning.
pub(crate) async fn accept(
    listener: &tokio::net::TcpListener,
    what: &str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => return c,
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
