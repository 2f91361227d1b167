//! One DNS question over UDP to a listener, as a resolver would ask it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// Asks `server` for `name`/`rtype`: the response code, the A/AAAA addresses answered, and
/// the whole message; `None` when nothing (or something else) came back within 2 s.
pub fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Option<(ResponseCode, Vec<IpAddr>, Message)> {
    let mut q = Message::new(4242, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(Name::from_ascii(name).ok()?, rtype));
    exchange(server, &q)
}

/// Asks like [`query`], carrying an EDNS client subnet (`subnet`/`prefix`) as a public
/// resolver does.
pub fn query_ecs(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    subnet: IpAddr,
    prefix: u8,
) -> Option<(ResponseCode, Vec<IpAddr>, Message)> {
    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut q = Message::new(4243, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(Name::from_ascii(name).ok()?, rtype));
    let mut edns = Edns::new();
    edns.options_mut()
        .insert(EdnsOption::Subnet(ClientSubnet::new(subnet, prefix, 0)));
    q.set_edns(edns);
    exchange(server, &q)
}

fn exchange(server: SocketAddr, q: &Message) -> Option<(ResponseCode, Vec<IpAddr>, Message)> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.send_to(&q.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok().filter(|r| r.id == q.id)?;
    let ips = r
        .answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    Some((r.response_code, ips, r))
}
