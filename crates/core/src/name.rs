//! Syntax rules for names that appear in objects: DNS names, addresses, HTTP tokens.

use std::net::IpAddr;

/// An RFC 7230 `token` (HTTP method names, header field names).
pub fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header field value with no control characters (which would let a value smuggle a
/// second header into a probe request).
pub fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// A DNS host name: dot-separated labels of letters, digits and hyphens (underscores are
/// tolerated, as resolvers do for service names), at most 253 characters, no empty label.
/// A trailing dot is allowed.
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// An origin address: an IP literal or a host name.
pub fn is_origin_address(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || (is_hostname(s) && !looks_like_bad_ipv4(s))
}

/// `300.1.1.1` is neither a valid IPv4 address nor a sensible host name.
fn looks_like_bad_ipv4(s: &str) -> bool {
    s.split('.').count() == 4 && s.split('.').all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// A pool name: `[A-Za-z0-9_-]+`.
pub fn is_pool_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A zone name: a host name with at least two labels, compared in lower case.
pub fn normalize_zone_name(s: &str) -> Option<String> {
    let lower = s.trim_end_matches('.').to_ascii_lowercase();
    (is_hostname(&lower) && lower.contains('.') && !lower.contains('_')).then_some(lower)
}

/// A load balancer hostname inside `zone`: the apex, a name under it, or a `*.` wildcard
/// under it. Returns the normalised (lower-case, no trailing dot) name.
pub fn normalize_lb_name(s: &str, zone: &str) -> Option<String> {
    let lower = s.trim_end_matches('.').to_ascii_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    let inside = host == zone || host.ends_with(&format!(".{zone}"));
    (inside && is_hostname(host) && (host != lower || !host.contains('*'))).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("example.com"));
        assert!(is_hostname("a-b.example.com."));
        assert!(!is_hostname("-a.example.com"));
        assert!(!is_hostname("a..b"));
        assert!(!is_hostname("exa mple.com"));
        assert!(!is_hostname(&"a".repeat(64)));
    }

    #[test]
    fn origin_addresses() {
        assert!(is_origin_address("192.0.2.10"));
        assert!(is_origin_address("2001:db8::1"));
        assert!(is_origin_address("origin.example.com"));
        assert!(!is_origin_address("300.1.1.1"));
        assert!(!is_origin_address("http://example.com"));
        assert!(!is_origin_address(""));
    }

    #[test]
    fn lb_names() {
        assert_eq!(
            normalize_lb_name("WWW.Example.com", "example.com").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            normalize_lb_name("example.com", "example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_lb_name("*.example.com", "example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(normalize_lb_name("www.example.org", "example.com"), None);
        assert_eq!(normalize_lb_name("badexample.com", "example.com"), None);
        assert_eq!(normalize_lb_name("a.*.example.com", "example.com"), None);
    }

    #[test]
    fn tokens_and_values() {
        assert!(is_http_token("GET"));
        assert!(!is_http_token("GE T"));
        assert!(is_header_value("example.com"));
        assert!(!is_header_value("a\r\nX-Evil: 1"));
    }
}
