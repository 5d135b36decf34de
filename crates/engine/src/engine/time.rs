//! Parsing the times that pick a rule version.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// Parses `2024-04-01`, `2024-04-01T12:00:00` (both UTC) or an RFC 3339 timestamp with an
/// offset (`2024-04-01T12:00:00Z`, `...+02:00`).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    parse_time_exact(text).map(|(t, _)| t)
}

/// [`parse_time`], and whether `text` is already exactly what [`utc_string`] prints for the
/// time (so it can be shown as is). A leap second (`23:59:60Z`) is read as `23:59:59Z`, and is
/// then not canonical: every output shows the second it was read as.
pub fn parse_time_exact(text: &str) -> Result<(Timestamp, bool), String> {
    // Ledgers carry millions of times in one shape; read that shape directly.
    if let Some(ts) = parse_canonical_utc(text) {
        return Ok((ts, true));
    }
    parse_time_general(text).map(|t| (t, false))
}

fn parse_time_general(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let out_of_range = || {
        format!(
            "`{text}` is a valid time, but outside the range jobpoints can represent (up to \
             9999-12-30T22:00:00Z)"
        )
    };
    match text.parse::<Timestamp>() {
        Ok(ts) => return Ok(ts),
        // jiff's range ends a day before the year 9999 does.
        Err(e) if e.to_string().contains("not in the required range") => {
            return Err(out_of_range());
        }
        Err(_) => {}
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        // `2024-06-01T00:00:00[Europe/Paris]`: which offset that is depends on a time zone
        // database, so the same job could be priced differently on two machines.
        if text.contains('[') {
            return Err(format!(
                "`{text}` names a time zone but no UTC offset; give the offset \
                 (`2024-06-01T00:00:00+02:00[Europe/Paris]`) or a UTC time (`...Z`)"
            ));
        }
        if text.len() > 10 {
            return TimeZone::UTC.to_timestamp(dt).map_err(|_| out_of_range());
        }
    }
    if let Ok(d) = text.parse::<Date>() {
        return TimeZone::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|_| out_of_range());
    }
    Err(format!(
        "`{text}` is not a date or time (expected `2024-04-01` or `2024-04-01T12:00:00Z`)"
    ))
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a valid date and time, without the general parser; `None`
/// for anything else (which the general parser then decides).
fn parse_canonical_utc(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
    let y_adj = if mo <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Timestamp::from_second(days * 86_400 + h * 3_600 + mi * 60 + sec).ok()
}

/// The date part of a timestamp in UTC, `YYYY-MM-DD`.
pub fn utc_date(ts: Timestamp) -> String {
    TimeZone::UTC.to_datetime(ts).date().to_string()
}

/// A timestamp in UTC with second precision: `2024-04-01T00:00:00Z`.
pub fn utc_string(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time as rule files write it: `2024-04-01` at midnight UTC, else the full time.
pub fn day_or_time(t: Timestamp) -> String {
    let full = utc_string(t);
    if full.ends_with("T00:00:00Z") {
        utc_date(t)
    } else {
        full
    }
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
        let z = parse_time("2024-05-15T14:00:00+02:00[Europe/Paris]").unwrap();
        assert_eq!(z, t, "an annotation with an offset uses the offset");
        assert!(parse_time("yesterday").is_err());
        // Found by #11: these used to be "not a date", or silently UTC.
        for (text, says) in [
            ("9999-12-31T23:59:59Z", "outside the range"),
            ("9999-12-31", "outside the range"),
            ("2024-06-01T00:00:00[Europe/Paris]", "no UTC offset"),
        ] {
            let e = parse_time(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(parse_time("2024-13-01").is_err());
    }

    #[test]
    fn canonical_fast_path_agrees_with_the_general_parser() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..20_000 {
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                next(10_000),
                next(14),
                next(33),
                next(26),
                next(62),
                next(62)
            );
            let general = text.parse::<Timestamp>().ok();
            assert_eq!(
                parse_canonical_utc(&text),
                general.filter(|_| !text.ends_with(":60Z")),
                "{text}"
            );
            if let Some(t) = general {
                assert_eq!(parse_time(&text).unwrap(), t, "{text}");
            }
        }
        for text in [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(
                parse_canonical_utc(text),
                text.parse::<Timestamp>().ok(),
                "{text}"
            );
        }
    }
}
