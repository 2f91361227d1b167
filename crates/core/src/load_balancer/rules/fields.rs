//! The fields a load-balancing rule may read, their types, and where each is known.

use std::borrow::Cow;
use std::net::IpAddr;

/// The type of a value in a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Bytes,
    Int,
    Ip,
    Bool,
    /// An array of `elem`.
    Array(Scalar),
    /// Names to arrays of strings (`http.request.headers`, `http.request.uri.args`).
    Map,
}

/// The types an array may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Bytes,
    Int,
    Bool,
}

impl Scalar {
    pub fn ty(self) -> Type {
        match self {
            Scalar::Bytes => Type::Bytes,
            Scalar::Int => Type::Int,
            Scalar::Bool => Type::Bool,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Type::Bytes => "a string",
            Type::Int => "an integer",
            Type::Ip => "an IP address",
            Type::Bool => "a Boolean",
            Type::Array(Scalar::Bytes) => "an array of strings",
            Type::Array(Scalar::Int) => "an array of integers",
            Type::Array(Scalar::Bool) => "an array of Booleans",
            Type::Map => "a map of string arrays",
        };
        f.write_str(s)
    }
}

/// Which load balancers may read a field: Cloudflare's "both", "proxied only" and
/// "non-proxied only" sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Both,
    Proxied,
    DnsOnly,
}

macro_rules! fields {
    ($($variant:ident = $name:literal, $ty:expr, $scope:ident;)+) => {
        /// A field of the request (or DNS query) a rule can test.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $($variant),+ }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];

            pub fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }

            pub fn ty(self) -> Type {
                match self { $(Field::$variant => $ty),+ }
            }

            pub fn scope(self) -> Scope {
                match self { $(Field::$variant => Scope::$scope),+ }
            }
        }
    };
}

fields! {
    LbName = "cf.load_balancer.name", Type::Bytes, Both;
    LbRegion = "cf.load_balancer.region", Type::Bytes, Both;
    IpSrc = "ip.src", Type::Ip, Both;
    Cookie = "http.cookie", Type::Bytes, Proxied;
    Host = "http.host", Type::Bytes, Proxied;
    Referer = "http.referer", Type::Bytes, Proxied;
    Headers = "http.request.headers", Type::Map, Proxied;
    HeaderNames = "http.request.headers.names", Type::Array(Scalar::Bytes), Proxied;
    HeaderValues = "http.request.headers.values", Type::Array(Scalar::Bytes), Proxied;
    Method = "http.request.method", Type::Bytes, Proxied;
    Timestamp = "http.request.timestamp.sec", Type::Int, Proxied;
    Uri = "http.request.uri", Type::Bytes, Proxied;
    Args = "http.request.uri.args", Type::Map, Proxied;
    ArgNames = "http.request.uri.args.names", Type::Array(Scalar::Bytes), Proxied;
    ArgValues = "http.request.uri.args.values", Type::Array(Scalar::Bytes), Proxied;
    Path = "http.request.uri.path", Type::Bytes, Proxied;
    Query = "http.request.uri.query", Type::Bytes, Proxied;
    Version = "http.request.version", Type::Bytes, Proxied;
    QueryName = "dns.qry.name", Type::Bytes, DnsOnly;
    QueryNameLen = "dns.qry.name.len", Type::Int, DnsOnly;
    QueryQu = "dns.qry.qu", Type::Bool, DnsOnly;
    QueryType = "dns.qry.type", Type::Int, DnsOnly;
    EcsPresent = "dns.rr.opt.client", Type::Bool, DnsOnly;
    EcsAddress = "dns.rr.opt.client.addr", Type::Bytes, DnsOnly;
}

impl Field {
    pub fn by_name(name: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// What the data plane knows of one proxied request. Header names are lower case.
#[derive(Debug, Clone, Default)]
pub struct HttpFacts<'a> {
    pub method: &'a str,
    /// The host the client asked for, without a port, lower case.
    pub host: Cow<'a, str>,
    /// Path and query, as received (`/a/b?x=1`).
    pub uri: &'a str,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    pub version: &'a str,
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// When the request arrived, Unix seconds.
    pub timestamp: i64,
}

/// What the DNS listener knows of one query.
#[derive(Debug, Clone, Default)]
pub struct DnsFacts<'a> {
    /// Lower case, without the final dot.
    pub name: &'a str,
    pub qtype: u16,
    /// The question's unicast-response bit (the top bit of its class).
    pub qu: bool,
    /// The EDNS client subnet's address, when the query carries one.
    pub ecs: Option<IpAddr>,
}

/// Everything a condition can read about one request or query.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// The load balancer's name.
    pub name: &'a str,
    /// The data plane's region code (`WNAM`), when it has one.
    pub region: Option<&'a str>,
    /// The client's address: the proxy's peer; for DNS the client subnet's address when
    /// present, else the resolver's.
    pub ip: Option<IpAddr>,
    pub http: Option<HttpFacts<'a>>,
    pub dns: Option<DnsFacts<'a>>,
}

/// A field's value for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Bytes(Cow<'a, str>),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
    Array(Vec<Value<'a>>),
    /// Name–value pairs; a name may repeat.
    Map(Vec<(Cow<'a, str>, Cow<'a, str>)>),
    /// Not known here (a missing header, an index past the end): every comparison with it
    /// is false.
    Missing,
}

fn args(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn header<'a>(h: &HttpFacts<'a>, name: &str) -> Cow<'a, str> {
    let mut values = h
        .headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone());
    let Some(first) = values.next() else {
        return Cow::Borrowed("");
    };
    let rest: Vec<Cow<'a, str>> = values.collect();
    if rest.is_empty() {
        return first;
    }
    // Several Cookie headers are one list, as HTTP/2 splits them (RFC 9113 §8.2.3).
    let sep = if name == "cookie" { "; " } else { ", " };
    let mut joined = first.into_owned();
    for v in rest {
        joined.push_str(sep);
        joined.push_str(&v);
    }
    Cow::Owned(joined)
}

impl<'a> Facts<'a> {
    /// The value of `field`, or `Missing` when this request does not have it.
    pub fn get(&self, field: Field) -> Value<'a> {
        let split = |uri: &'a str| uri.split_once('?').unwrap_or((uri, ""));
        match field {
            Field::LbName => Value::Bytes(Cow::Borrowed(self.name)),
            Field::LbRegion => self
                .region
                .map_or(Value::Missing, |r| Value::Bytes(Cow::Borrowed(r))),
            Field::IpSrc => self.ip.map_or(Value::Missing, Value::Ip),
            _ => {
                if let Some(h) = &self.http {
                    return http_field(h, field, split);
                }
                if let Some(d) = &self.dns {
                    return dns_field(d, field);
                }
                Value::Missing
            }
        }
    }
}

fn http_field<'a>(
    h: &HttpFacts<'a>,
    field: Field,
    split: impl Fn(&'a str) -> (&'a str, &'a str),
) -> Value<'a> {
    let bytes = |s: &'a str| Value::Bytes(Cow::Borrowed(s));
    let (path, query) = split(h.uri);
    match field {
        Field::Cookie => Value::Bytes(header(h, "cookie")),
        Field::Referer => Value::Bytes(header(h, "referer")),
        Field::Host => Value::Bytes(h.host.clone()),
        Field::Headers => Value::Map(h.headers.clone()),
        Field::HeaderNames => Value::Array(
            h.headers
                .iter()
                .map(|(n, _)| Value::Bytes(n.clone()))
                .collect(),
        ),
        Field::HeaderValues => Value::Array(
            h.headers
                .iter()
                .map(|(_, v)| Value::Bytes(v.clone()))
                .collect(),
        ),
        Field::Method => bytes(h.method),
        Field::Timestamp => Value::Int(h.timestamp),
        Field::Uri => bytes(h.uri),
        Field::Path => bytes(path),
        Field::Query => bytes(query),
        Field::Args => Value::Map(
            args(query)
                .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
                .collect(),
        ),
        Field::ArgNames => Value::Array(args(query).map(|(n, _)| bytes(n)).collect()),
        Field::ArgValues => Value::Array(args(query).map(|(_, v)| bytes(v)).collect()),
        Field::Version => bytes(h.version),
        _ => Value::Missing,
    }
}

fn dns_field<'a>(d: &DnsFacts<'a>, field: Field) -> Value<'a> {
    match field {
        Field::QueryName => Value::Bytes(Cow::Borrowed(d.name)),
        Field::QueryNameLen => Value::Int(d.name.len() as i64),
        Field::QueryQu => Value::Bool(d.qu),
        Field::QueryType => Value::Int(i64::from(d.qtype)),
        Field::EcsPresent => Value::Bool(d.ecs.is_some()),
        Field::EcsAddress => {
            Value::Bytes(Cow::Owned(d.ecs.map(|a| a.to_string()).unwrap_or_default()))
        }
        _ => Value::Missing,
    }
}
