//! A minimal pingora HTTP proxy: the peer for bench/proxy.sh. One upstream, keep-alive pool,
//! X-Forwarded-For appended and X-Forwarded-Proto set, as nginx's configuration in the bench.
use async_trait::async_trait;
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_proxy::{ProxyHttp, Session};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bench {
    backend: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bench {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.backend, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut pingora_http::RequestHeader,
        _c: &mut (),
    ) -> Result<()> {
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let xff = match req.headers.get("x-forwarded-for") {
            Some(v) => format!("{}, {peer}", v.to_str().unwrap_or("")),
            None => peer,
        };
        req.insert_header("X-Forwarded-For", xff)?;
        req.insert_header("X-Forwarded-Proto", "http")?;
        Ok(())
    }
}

fn main() {
    let listen = std::env::var("LISTEN").expect("LISTEN");
    let backend = std::env::var("BACKEND").expect("BACKEND").parse().unwrap();
    let mut server = Server::new(Some(Opt::parse_args())).unwrap();
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(&server.configuration, Bench { backend });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
