//! RFC 3339 timestamps with microseconds, as Cloudflare writes them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;
use vantage_core::Timestamp;

/// `2014-01-01T05:20:00.123456Z`: always six fractional digits, so the same instant always
/// renders to the same bytes.
pub fn format(t: Timestamp) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_micros()) * 1000)
        .ok()
        .and_then(|dt| dt.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}

/// Parses an RFC 3339 instant (any offset, any precision down to microseconds).
pub fn parse(s: &str) -> Option<Timestamp> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let micros = dt.unix_timestamp_nanos() / 1000;
    i64::try_from(micros).ok().map(Timestamp::from_unix_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_precision_round_trip() {
        let t = Timestamp::from_unix_micros(1_388_553_600_123_450);
        assert_eq!(format(t), "2014-01-01T05:20:00.123450Z");
        assert_eq!(parse(&format(t)), Some(t));
        assert_eq!(parse("2014-01-01T06:20:00.12345+01:00"), Some(t));
        assert_eq!(parse("yesterday"), None);
    }
}
