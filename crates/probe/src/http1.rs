//! One HTTP/1.1 exchange on a check's fresh connection: the request written in one piece, the
//! answer's head parsed with httparse (the parser hyper uses), and at most the first
//! [`BODY_WINDOW`] bytes of its body decoded, then the connection dropped.
//!
//! A check needs a small part of what a general client does: no pooling, no request body, no
//! upgrades, nothing past the window. hyper's client was 15 % of the built-in agent's CPU on
//! the probes bench (its dispatcher, channels and header maps per check); this is the path
//! HAProxy's checks take too (BENCHMARKS.md, "Probes end to end").

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use vantage_core::health::FailureReason;
use vantage_core::monitor::Headers;
use vantage_core::name::{is_header_value, is_http_token};

use crate::net::io_failure;

/// How much of a body is searched for `expected_body`, and the most ever read.
pub(crate) const BODY_WINDOW: usize = 10 * 1024;
/// The longest answer head read: a health check's answer has no use for a larger one, and
/// past it the answer is invalid rather than a reason to keep reading.
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one head (hyper's default).
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with its extensions) waited for.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const READ_SIZE: usize = 4 * 1024;

/// What a check sends.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path_and_query: &'a str,
    pub(crate) host: &'a str,
    pub(crate) user_agent: &'a str,
    /// The monitor's headers; its `Host` is already in `host`.
    pub(crate) headers: &'a Headers,
}

/// What a check reads.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    /// Whether `expected` (lower case) was in the first [`BODY_WINDOW`] bytes of the body,
    /// compared without case; true when nothing was expected (the body is then not read).
    pub(crate) body_matched: bool,
}

/// Sends `request` and reads the answer.
pub(crate) async fn exchange<S>(
    stream: &mut S,
    request: &Request<'_>,
    expected: &[u8],
) -> Result<Answer, FailureReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bytes = encode(request).ok_or(FailureReason::Other)?;
    stream.write_all(&bytes).await.map_err(|e| io_failure(&e))?;
    stream.flush().await.map_err(|e| io_failure(&e))?;

    let mut buf = Vec::with_capacity(READ_SIZE);
    let head = loop {
        match parse_head(&buf, request.method == "HEAD")? {
            // An interim answer (`100 Continue`, `103 Early Hints`) precedes the real one.
            Some(head) if (100..200).contains(&head.status) && head.status != 101 => {
                buf.drain(..head.len);
            }
            Some(head) => break head,
            None if buf.len() >= MAX_HEAD => return Err(FailureReason::HttpInvalidResponse),
            None => {
                if read_more(stream, &mut buf).await? == 0 {
                    return Err(FailureReason::HttpInvalidResponse);
                }
            }
        }
    };
    let mut answer = Answer {
        status: head.status,
        location: head.location,
        body_matched: true,
    };
    if expected.is_empty() {
        return Ok(answer);
    }
    buf.drain(..head.len);
    let mut window = Window::new(expected);
    let mut body = head.framing;
    loop {
        let ended = body.decode(&mut buf, &mut window)?;
        if ended || window.settled() {
            break;
        }
        if buf.len() > MAX_CHUNK_LINE {
            return Err(FailureReason::HttpInvalidResponse);
        }
        if read_more(stream, &mut buf).await? == 0 {
            if !matches!(body, Framing::UntilClose) {
                return Err(FailureReason::HttpInvalidResponse);
            }
            break;
        }
    }
    answer.body_matched = window.matched;
    Ok(answer)
}

/// The request head, or `None` when a part would not be one token or one line (the API
/// validates all of them; a redirect's `Location` is normalised by the URL parser).
fn encode(r: &Request<'_>) -> Option<Vec<u8>> {
    let path_ok = r.path_and_query.starts_with('/')
        && !r
            .path_and_query
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ');
    if !is_http_token(r.method)
        || !path_ok
        || r.host.is_empty()
        || !is_header_value(r.host)
        || !is_header_value(r.user_agent)
    {
        return None;
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(r.method.as_bytes());
    out.push(b' ');
    // A fragment is never sent, and bytes past ASCII go percent-encoded, as URL parsers and
    // browsers send them (the API takes a monitor's path as written; controls are refused
    // above, so the set only encodes those bytes).
    let target = r.path_and_query.split('#').next().unwrap_or_default();
    for piece in percent_encoding::percent_encode(target.as_bytes(), percent_encoding::CONTROLS) {
        out.extend_from_slice(piece.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_length = false;
    for (name, values) in r.headers {
        // A request without a body cannot be chunked (the API refuses the header; a monitor
        // stored before it did is sent without it, as hyper's client did).
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        if !is_http_token(name) || !values.iter().all(|v| is_header_value(v)) {
            return None;
        }
        has_length |= name.eq_ignore_ascii_case("content-length");
        for value in values {
            for part in [name.as_str(), ": ", value.as_str(), "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
    }
    for part in ["Host: ", r.host, "\r\nUser-Agent: ", r.user_agent, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    // A method whose request carries content says it carries none: nginx, for one, answers
    // `411 Length Required` to a POST without it.
    if !has_length && matches!(r.method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(b"Content-Length: 0\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Some(out)
}

async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, FailureReason> {
    buf.reserve(READ_SIZE);
    stream.read_buf(buf).await.map_err(|e| io_failure(&e))
}

/// A complete answer head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// Its length in bytes, the blank line included.
    len: usize,
    status: u16,
    location: Option<String>,
    framing: Framing,
}

/// `None` while the head is incomplete.
fn parse_head(buf: &[u8], to_head: bool) -> Result<Option<Head>, FailureReason> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(FailureReason::HttpInvalidResponse),
    };
    let status = response
        .code
        .filter(|code| *code >= 100)
        .ok_or(FailureReason::HttpInvalidResponse)?;
    let mut location = None;
    let mut chunked = None;
    // `Err`: an invalid or conflicting Content-Length, which matters only if it frames the body.
    let mut length: Result<Option<u64>, ()> = Ok(None);
    for field in response.headers.iter() {
        let value = field.value;
        if field.name.eq_ignore_ascii_case("location") && location.is_none() {
            // Only visible ASCII, as hyper's `to_str` took it; anything else is not followed.
            location = std::str::from_utf8(value)
                .ok()
                .filter(|v| is_header_value(v) && v.is_ascii())
                .map(str::to_owned);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding frames the body (RFC 9112 §6.3).
            let last = value.rsplit(|b| *b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if field.name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|b| *b == b',') {
                let n = std::str::from_utf8(part.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok());
                length = match (length, n) {
                    (Ok(None), Some(n)) => Ok(Some(n)),
                    (Ok(Some(l)), Some(n)) if l == n => Ok(Some(n)),
                    _ => Err(()),
                };
            }
        }
    }
    // As hyper's client framed answers (RFC 9112 §6.3): an answer that cannot have a body
    // has none, whatever its fields say; Transfer-Encoding overrides Content-Length, but an
    // HTTP/1.0 answer cannot use it; only then must Content-Length be valid.
    let framing = if to_head || matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else {
        match (chunked, length) {
            (Some(_), _) if response.version == Some(0) => {
                return Err(FailureReason::HttpInvalidResponse)
            }
            (Some(true), _) => Framing::Chunked(Chunk::Size),
            (Some(false), _) => Framing::UntilClose,
            (None, Ok(Some(n))) => Framing::Length(n),
            (None, Ok(None)) => Framing::UntilClose,
            (None, Err(())) => return Err(FailureReason::HttpInvalidResponse),
        }
    };
    Ok(Some(Head {
        len,
        status,
        location,
        framing,
    }))
}

/// How the body ends.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    Chunked(Chunk),
    /// When the server closes.
    UntilClose,
}

/// Where a chunked body's decoding is.
#[derive(Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The last chunk was read; trailers are not.
    Done,
}

impl Framing {
    /// Decodes what it can of `raw` into `window` and removes it from `raw`; true once the
    /// body has ended.
    fn decode(
        &mut self,
        raw: &mut Vec<u8>,
        window: &mut Window<'_>,
    ) -> Result<bool, FailureReason> {
        match self {
            Framing::Length(left) => {
                let take = raw.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                window.push(&raw[..take]);
                *left -= take as u64;
                raw.clear();
                Ok(*left == 0)
            }
            Framing::UntilClose => {
                window.push(raw);
                raw.clear();
                Ok(false)
            }
            Framing::Chunked(chunk) => {
                let at = chunk.decode(raw, window)?;
                raw.drain(..at);
                Ok(*chunk == Chunk::Done)
            }
        }
    }
}

impl Chunk {
    /// How many bytes of `raw` were decoded.
    fn decode(&mut self, raw: &[u8], window: &mut Window<'_>) -> Result<usize, FailureReason> {
        let mut at = 0;
        while !window.settled() {
            let rest = &raw[at..];
            match *self {
                // httparse reads a line without digits as size 0, the last chunk.
                Chunk::Size if rest.first().is_some_and(|b| !b.is_ascii_hexdigit()) => {
                    return Err(FailureReason::HttpInvalidResponse)
                }
                Chunk::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        at += n;
                        *self = if size == 0 {
                            Chunk::Done
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => break,
                    Err(_) => return Err(FailureReason::HttpInvalidResponse),
                },
                Chunk::Data(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if take == 0 {
                        break;
                    }
                    window.push(&rest[..take]);
                    at += take;
                    *self = match left - take as u64 {
                        0 => Chunk::DataEnd,
                        more => Chunk::Data(more),
                    };
                }
                Chunk::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        *self = Chunk::Size;
                    }
                    [] | [b'\r'] => break,
                    _ => return Err(FailureReason::HttpInvalidResponse),
                },
                Chunk::Done => break,
            }
        }
        Ok(at)
    }
}

/// The body's first [`BODY_WINDOW`] bytes in lower case, searched as they arrive.
struct Window<'a> {
    expected: &'a [u8],
    seen: Vec<u8>,
    matched: bool,
}

impl<'a> Window<'a> {
    fn new(expected: &'a [u8]) -> Self {
        Self {
            expected,
            seen: Vec::with_capacity(BODY_WINDOW.min(4096)),
            matched: expected.is_empty(),
        }
    }

    /// Whether reading more could change the result.
    fn settled(&self) -> bool {
        self.matched || self.seen.len() >= BODY_WINDOW
    }

    fn push(&mut self, data: &[u8]) {
        if self.settled() {
            return;
        }
        // Only where the new bytes could complete a match is searched again.
        let from = self.seen.len().saturating_sub(self.expected.len() - 1);
        let room = BODY_WINDOW - self.seen.len();
        self.seen
            .extend(data.iter().take(room).map(u8::to_ascii_lowercase));
        self.matched = self.seen[from..]
            .windows(self.expected.len())
            .any(|w| w == self.expected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, FailureReason> {
        parse_head(raw.as_bytes(), false)
    }

    /// The body of `raw` as the window reads it when fed in pieces of `step` bytes.
    fn matched(
        framing: Framing,
        raw: &[u8],
        expected: &str,
        step: usize,
    ) -> Result<bool, FailureReason> {
        let mut framing = framing;
        let mut window = Window::new(expected.as_bytes());
        let mut buf = Vec::new();
        for piece in raw.chunks(step) {
            buf.extend_from_slice(piece);
            if framing.decode(&mut buf, &mut window)? || window.settled() {
                break;
            }
        }
        Ok(window.matched)
    }

    #[test]
    fn heads_give_status_location_and_framing() {
        let h = head("HTTP/1.1 301 Moved\r\nLocation: /next\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.location.as_deref()), (301, Some("/next")));
        assert_eq!(h.framing, Framing::Length(3));
        assert_eq!(
            h.len,
            "HTTP/1.1 301 Moved\r\nLocation: /next\r\nContent-Length: 3\r\n\r\n".len()
        );
        let chunked =
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(
            head(chunked).unwrap().unwrap().framing,
            Framing::Chunked(Chunk::Size)
        );
        let gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(head(gzip).unwrap().unwrap().framing, Framing::UntilClose);
        assert_eq!(
            head("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap().framing,
            Framing::UntilClose
        );
        let empty = "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n";
        assert_eq!(head(empty).unwrap().unwrap().framing, Framing::Length(0));
        let to_head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true);
        assert_eq!(to_head.unwrap().unwrap().framing, Framing::Length(0));
        // A Content-Length that frames nothing is not judged: no body can follow, or
        // Transfer-Encoding frames it.
        for bodiless in [
            "HTTP/1.1 204 No Content\r\nContent-Length: banana\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 1, 2\r\n\r\n",
        ] {
            let h = head(bodiless).unwrap().unwrap();
            assert_eq!(h.framing, Framing::Length(0), "{bodiless:?}");
        }
        let to_head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", true);
        assert_eq!(to_head.unwrap().unwrap().framing, Framing::Length(0));
        let overridden =
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            head(overridden).unwrap().unwrap().framing,
            Framing::Chunked(Chunk::Size)
        );
    }

    #[test]
    fn incomplete_and_invalid_heads() {
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert_eq!(head(""), Ok(None));
        for bad in [
            "\x15\x03\x03\x00\x02\x02\x46",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 042 X\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            // HTTP/1.0 has no Transfer-Encoding (hyper refused such an answer).
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                head(bad),
                Err(FailureReason::HttpInvalidResponse),
                "{bad:?}"
            );
        }
        let same = head("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(same.framing, Framing::Length(2));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(head(&many), Err(FailureReason::HttpInvalidResponse));
        let non_ascii = parse_head(b"HTTP/1.1 302 Found\r\nLocation: /\xc3\xa9\r\n\r\n", false);
        assert_eq!(non_ascii.unwrap().unwrap().location, None);
    }

    #[test]
    fn bodies_are_searched_across_pieces_without_case() {
        let body = b"<html>all is WELL here</html>";
        for step in [1, 2, 5, 64] {
            assert_eq!(
                matched(Framing::Length(body.len() as u64), body, "is well", step),
                Ok(true)
            );
            assert_eq!(
                matched(Framing::UntilClose, body, "is well", step),
                Ok(true)
            );
            assert_eq!(
                matched(Framing::Length(8), body, "is well", step),
                Ok(false)
            );
            let chunked =
                b"4;ext=1\r\n<htm\r\n13\r\nl>all is WELL here<\r\n6\r\n/html>\r\n0\r\n\r\n";
            assert_eq!(
                matched(Framing::Chunked(Chunk::Size), chunked, "is well", step),
                Ok(true)
            );
            assert_eq!(
                matched(Framing::Chunked(Chunk::Size), chunked, "html>", step),
                Ok(true)
            );
            assert_eq!(
                matched(Framing::Chunked(Chunk::Size), chunked, "absent", step),
                Ok(false)
            );
        }
        let bad = matched(Framing::Chunked(Chunk::Size), b"4\r\nabcdXY", "absent", 3);
        assert_eq!(bad, Err(FailureReason::HttpInvalidResponse));
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n5\r\nhello\r\n0\r\n\r\n",
            b";x\r\n",
            b"5\r\nhello\r\n \r\n",
        ] {
            let r = matched(Framing::Chunked(Chunk::Size), bad, "hello!", 3);
            assert_eq!(r, Err(FailureReason::HttpInvalidResponse), "{bad:?}");
        }
    }

    #[test]
    fn the_window_ends_the_search() {
        let mut body = vec![b'a'; BODY_WINDOW - 2];
        body.extend_from_slice(b"needle");
        let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        for step in [7, 4096] {
            assert_eq!(matched(Framing::UntilClose, &body, "ne", step), Ok(true));
            assert_eq!(
                matched(Framing::UntilClose, &body, "needle", step),
                Ok(false)
            );
            assert_eq!(
                matched(Framing::Chunked(Chunk::Size), &chunked, "needle", step),
                Ok(false)
            );
        }
    }

    fn request<'a>(method: &'a str, headers: &'a Headers) -> Request<'a> {
        Request {
            method,
            path_and_query: "/health?x=1",
            host: "origin.example:8080",
            user_agent: "Vantage-Health-Check",
            headers,
        }
    }

    #[test]
    fn requests_are_one_head() {
        let headers: Headers = [
            ("Host".to_owned(), vec!["ignored".to_owned()]),
            ("X-Two".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
        ]
        .into();
        let get = String::from_utf8(encode(&request("GET", &headers)).unwrap()).unwrap();
        assert_eq!(
            get,
            "GET /health?x=1 HTTP/1.1\r\nX-Two: a\r\nX-Two: b\r\nHost: origin.example:8080\r\n\
             User-Agent: Vantage-Health-Check\r\nConnection: close\r\n\r\n"
        );
        let post = String::from_utf8(encode(&request("POST", &headers)).unwrap()).unwrap();
        assert!(
            post.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "{post}"
        );
        let chunked: Headers =
            [("Transfer-Encoding".to_owned(), vec!["chunked".to_owned()])].into();
        let post = String::from_utf8(encode(&request("POST", &chunked)).unwrap()).unwrap();
        assert!(!post.contains("Transfer-Encoding"), "{post}");
        assert!(post.contains("Content-Length: 0\r\n"), "{post}");
        let none = Headers::new();
        let odd = Request {
            path_and_query: "/caf\u{e9}?q=1#part",
            ..request("GET", &none)
        };
        let line = String::from_utf8(encode(&odd).unwrap()).unwrap();
        assert!(
            line.starts_with("GET /caf%C3%A9?q=1 HTTP/1.1\r\n"),
            "{line}"
        );
        let injected: Headers = [("X".to_owned(), vec!["a\r\nEvil: 1".to_owned()])].into();
        assert_eq!(encode(&request("GET", &injected)), None);
        assert_eq!(encode(&request("GET /x", &headers)), None);
    }
}
