//! A server with its proxy and DNS listeners, an account and the zone `example.com`: where the
//! traffic tests start.

use std::net::SocketAddr;

use super::Server;

pub struct Setup {
    pub server: Server,
    pub account: String,
    pub zone: String,
    pub proxy: SocketAddr,
    pub dns: SocketAddr,
}

impl Setup {
    /// Starts it with `extra` flags besides the listeners. Response-rate limiting is off:
    /// these tests query DNS from one address as fast as they like (it is tested on its own,
    /// in crates/dataplane).
    pub async fn start(extra: &[&str]) -> Setup {
        let mut flags = vec![
            "--proxy-listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-rrl-rate",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        flags.extend_from_slice(extra);
        let server = Server::start_flags(&flags);
        let account = server.account_id().await;
        let zone = server.zone(&account, "example.com").await;
        let proxy = server.serving("proxy");
        let dns = server.serving("dns");
        Setup {
            server,
            account,
            zone,
            proxy,
            dns,
        }
    }
}
