//! The data plane: the HTTP proxy and the authoritative DNS listener. Both read the routing
//! snapshot the control plane publishes (an `ArcSwap<RoutingTable>`) and ask the core where
//! traffic goes; neither ever touches the catalog, the engine or the store.

pub mod affinity;
pub mod dns;
pub mod geo;
pub mod load;
pub mod proxy;
pub mod upstream;

pub use proxy::{Proxy, ProxyConfig};
