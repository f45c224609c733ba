//! dbt's timestamps: RFC 3339 with `Z` or an offset in the artifacts, and naive UTC date-times
//! (`2026-12-02T09:37:12.568301`) in the log's `node_info`.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Parses a dbt timestamp; a date-time without an offset is UTC (dbt writes `utcnow()` there).
/// `None` for anything else, including the empty string dbt writes for "not yet".
pub(crate) fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt = text.parse::<jiff::civil::DateTime>().ok()?;
    dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// A timestamp as Clyra writes it: RFC 3339 in UTC with `Z`, at most microsecond precision
/// (dbt's own precision), trailing zeros of the fraction dropped.
pub(crate) fn format(ts: Timestamp) -> String {
    let micros = ts.as_microsecond();
    Timestamp::from_microsecond(micros)
        .unwrap_or(ts)
        .to_string()
}

/// [`parse`] then [`format`].
pub(crate) fn normalize(text: &str) -> Option<String> {
    parse(text).map(format)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_every_form_dbt_writes() {
        assert_eq!(
            normalize("2026-12-02T09:37:12.715020Z").as_deref(),
            Some("2026-12-02T09:37:12.71502Z")
        );
        assert_eq!(
            normalize("2026-12-02T09:37:12.568301").as_deref(),
            Some("2026-12-02T09:37:12.568301Z")
        );
        assert_eq!(
            normalize("2026-12-02T09:37:11.005504+00:00").as_deref(),
            Some("2026-12-02T09:37:11.005504Z")
        );
        assert_eq!(
            normalize("2026-12-02T10:37:11+01:00").as_deref(),
            Some("2026-12-02T09:37:11Z")
        );
        for bad in ["", "  ", "yesterday", "2026-13-02T00:00:00Z", "None"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
