//! Parsing the times that pick a rule version.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// Parses `2024-04-01`, `2024-04-01T12:00:00` (both UTC) or an RFC 3339 timestamp with an
/// offset (`2024-04-01T12:00:00Z`, `...+02:00`).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        if text.len() > 10 {
            return TimeZone::UTC.to_timestamp(dt).map_err(|e| e.to_string());
        }
    }
    if let Ok(d) = text.parse::<Date>() {
        return TimeZone::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "`{text}` is not a date or time (expected `2024-04-01` or `2024-04-01T12:00:00Z`)"
    ))
}

/// The date part of a timestamp in UTC, `YYYY-MM-DD`.
pub fn utc_date(ts: Timestamp) -> String {
    TimeZone::UTC.to_datetime(ts).date().to_string()
}

/// A timestamp in UTC with second precision: `2024-04-01T00:00:00Z`.
pub fn utc_string(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_times() {
        let d = parse_time("2024-04-01").unwrap();
        assert_eq!(utc_string(d), "2024-04-01T00:00:00Z");
        let t = parse_time("2024-05-15T12:00:00Z").unwrap();
        assert_eq!(utc_string(t), "2024-05-15T12:00:00Z");
        let o = parse_time("2024-05-15T14:00:00+02:00").unwrap();
        assert_eq!(o, t);
        let l = parse_time("2024-05-15T12:00:00").unwrap();
        assert_eq!(l, t);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01").is_err());
    }
}
