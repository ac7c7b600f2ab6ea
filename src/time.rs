//! The clock and how the relay reads and writes times: unix milliseconds
//! (the one clock reading the store keeps), RFC 3339 out, RFC 3339 or a date
//! in. Reading the clock is [`now_ms`]; everything else is pure.

/// Unix time in milliseconds: the one clock reading the store keeps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The day (days since the epoch, UTC) unix milliseconds fall on: how
/// `campaign_days` and the soft-bounce count name a day.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of a day as [`day_of`] counts it.
pub fn format_day(day: i64) -> String {
    let mut t = format_time(day.saturating_mul(DAY_MS));
    t.truncate(10);
    t
}

/// Formats unix milliseconds as RFC 3339 (UTC, seconds).
pub fn format_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 with `Z` or a numeric offset, fractional seconds allowed; or a
/// date (midnight UTC). Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 10 {
        return parse_rfc3339(&format!("{s}T00:00:00Z"));
    }
    // humantime reads UTC only: take a `+HH:MM` / `-HH:MM` offset off first.
    let (base, offset_ms) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((base, off))
            if base.len() >= 19
                && (off.starts_with('+') || off.starts_with('-'))
                && off.as_bytes()[3] == b':' =>
        {
            let h: i64 = off[1..3].parse().ok()?;
            let m: i64 = off[4..6].parse().ok()?;
            let sign = if off.starts_with('-') { -1 } else { 1 };
            (base.to_owned() + "Z", sign * (h * 60 + m) * 60_000)
        }
        _ => (s.to_owned(), 0),
    };
    let t = humantime::parse_rfc3339_weak(&base).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(ms - offset_ms)
}

/// What `--since` takes: an age before `now` (`2h`, `7d`), or what
/// [`parse_rfc3339`] reads.
pub fn parse_time_or_age(s: &str, now: i64) -> Option<i64> {
    let s = s.trim();
    match humantime::parse_duration(s) {
        Ok(age) => Some(now - age.as_millis() as i64),
        Err(_) => parse_rfc3339(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(parse_rfc3339("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn since_is_an_age_or_a_time() {
        assert_eq!(
            parse_time_or_age("2h", 10_000_000),
            Some(10_000_000 - 7_200_000)
        );
        assert_eq!(parse_time_or_age(" 1970-01-02 ", 0), Some(86_400_000));
        assert_eq!(
            parse_time_or_age("1970-01-01T00:00:01-00:30", 0),
            Some(1_801_000)
        );
        assert_eq!(parse_time_or_age("soon", 0), None);
    }

    #[test]
    fn format_is_rfc3339_in_seconds() {
        assert_eq!(format_time(1_250), "1970-01-01T00:00:01Z");
        assert_eq!(format_time(-5), "1970-01-01T00:00:00Z");
    }
}
