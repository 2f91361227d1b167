//! Turning request headers into a [`Principal`], or the precise Cloudflare error.

use axum::http::HeaderMap;
use vantage_core::auth::Permission;
use vantage_core::auth::{AgentBinding, Principal, Target, TokenKind};
use vantage_core::catalog::Catalog;
use vantage_core::Timestamp;
use vantage_wire::ApiError;

use vantage_control::secrets::{
    digests_equal, is_global_key_syntax, is_token_syntax, key_digest, token_digest,
};

/// One credential header. Sent twice it is malformed: proxies and frameworks disagree on
/// which copy wins, and that disagreement is how a credential gets smuggled past a check.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| ()),
        (Some(_), Some(_)) => Err(()),
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case, as
/// RFC 9110 says), if it has a token's syntax.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && is_token_syntax(token)).then_some(token)
}

/// Checks the credential a request carries: `Authorization: Bearer <token>`, or the legacy
/// `X-Auth-Email` + `X-Auth-Key` pair.
pub fn authenticate(
    headers: &HeaderMap,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Principal, ApiError> {
    let bad_authorization =
        || ApiError::bad_auth_header(6111, "Invalid format for Authorization header");
    let authorization = header(headers, "authorization").map_err(|()| bad_authorization())?;
    let email = header(headers, "x-auth-email")
        .map_err(|()| ApiError::bad_auth_header(6102, "Invalid format for X-Auth-Email header"))?;
    let key = header(headers, "x-auth-key")
        .map_err(|()| ApiError::bad_auth_header(6103, "Invalid format for X-Auth-Key header"))?;

    if let Some(value) = authorization {
        let token = bearer(value).ok_or_else(bad_authorization)?;
        let digest = token_digest(token);
        return match catalog.token_by_digest(&digest) {
            Some(t) if t.kind == TokenKind::Agent => Err(ApiError::agent_token_on_api()),
            Some(t) if t.kind == TokenKind::Edge => Err(ApiError::edge_token_elsewhere()),
            Some(t) if digests_equal(&t.digest, &digest) && t.is_usable(now) => {
                Ok(Principal::for_token(t))
            }
            _ => Err(ApiError::invalid_token()),
        };
    }

    match (email, key) {
        (Some(email), Some(key)) => {
            if !is_email_syntax(email) {
                return Err(ApiError::bad_auth_header(
                    6102,
                    "Invalid format for X-Auth-Email header",
                ));
            }
            if !is_global_key_syntax(key) {
                return Err(ApiError::bad_auth_header(
                    6103,
                    "Invalid format for X-Auth-Key header",
                ));
            }
            match catalog.user_by_email(email) {
                Some(u) if digests_equal(&u.key_digest, &key_digest(&u.key_salt, key)) => {
                    Ok(Principal::for_user(u))
                }
                Some(_) => Err(ApiError::unknown_key()),
                None => {
                    // Spend the same work as for a known user, so timing does not reveal
                    // which e-mail addresses exist.
                    let _ = digests_equal(&key_digest(&[0; 16], key), &key_digest(&[1; 16], key));
                    Err(ApiError::unknown_key())
                }
            }
        }
        _ => Err(ApiError::missing_credentials()),
    }
}

fn is_email_syntax(s: &str) -> bool {
    let mut parts = s.splitn(2, '@');
    let local = parts.next().unwrap_or_default();
    let domain = parts.next().unwrap_or_default();
    !local.is_empty()
        && domain.contains('.')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// 403/10000 unless `principal` holds `needed` on `target`.
pub fn require(principal: &Principal, needed: Permission, target: Target) -> Result<(), ApiError> {
    if principal.allows(needed, target) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The digest of a protocol request's `Authorization: Bearer` token and the token it names,
/// if any (the agent and edge protocols take nothing else).
fn presented_token<'c>(
    headers: &HeaderMap,
    catalog: &'c Catalog,
) -> Result<
    (
        vantage_core::auth::SecretDigest,
        Option<&'c vantage_core::auth::Token>,
    ),
    ApiError,
> {
    let bad = || ApiError::bad_auth_header(6111, "Invalid format for Authorization header");
    let value = header(headers, "authorization")
        .map_err(|()| bad())?
        .ok_or_else(ApiError::missing_credentials)?;
    let digest = token_digest(bearer(value).ok_or_else(bad)?);
    let token = catalog.token_by_digest(&digest);
    Ok((digest, token))
}

/// Checks an agent's bearer token: only an active agent token passes, and it speaks for the
/// one location it is bound to.
pub fn authenticate_agent(
    headers: &HeaderMap,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<AgentBinding, ApiError> {
    let (digest, token) = presented_token(headers, catalog)?;
    match token {
        Some(t)
            if digests_equal(&t.digest, &digest)
                && t.is_usable(now)
                && t.kind == TokenKind::Agent =>
        {
            t.agent.clone().ok_or_else(|| {
                ApiError::agent_location(
                    "this agent token is bound to no probe location; create one with \
                     `vantage token create --agent --region R --location L` and revoke this one",
                )
            })
        }
        Some(t) if t.kind == TokenKind::Api => Err(ApiError::api_token_on_agent()),
        Some(t) if t.kind == TokenKind::Edge => Err(ApiError::edge_token_elsewhere()),
        _ => Err(ApiError::invalid_token()),
    }
}

/// The edge an `Authorization: Bearer` edge token names (its token's id and name), for the
/// edge protocol; API and agent tokens are refused with 403.
pub fn authenticate_edge(
    headers: &HeaderMap,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<(vantage_core::TokenId, String), ApiError> {
    let (digest, token) = presented_token(headers, catalog)?;
    match token {
        Some(t)
            if digests_equal(&t.digest, &digest)
                && t.is_usable(now)
                && t.kind == TokenKind::Edge =>
        {
            Ok((t.id, t.name.clone()))
        }
        Some(t) if t.kind != TokenKind::Edge && t.is_usable(now) => Err(ApiError::not_edge_token()),
        _ => Err(ApiError::invalid_token()),
    }
}
