//! `Retry-After` (RFC 9110 §10.2.3): how long a 429 or 503 asks the client to wait.
//!
//! The value is either delay-seconds or an HTTP-date (§5.6.7), in any of the three formats a
//! recipient must accept. Parsed here rather than with the browser's `Date.parse`, whose
//! handling of anything but the preferred format is implementation-defined; the wall clock it is
//! relative to is passed in, as everywhere in the core.

/// The wait a `Retry-After` value asks for, in milliseconds after `now_unix_ms` (the wall clock,
/// milliseconds since the Unix epoch, as the caller read it when the response arrived).
///
/// - delay-seconds (`120`): that many seconds (saturating);
/// - an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete `Sunday, 06-Nov-94 08:49:37 GMT`
///   or `Sun Nov  6 08:49:37 1994`): the time until then, zero if it has passed;
/// - anything else: `None` (the header is ignored, as RFC 9110 allows).
///
/// ```
/// use sse_relay::core::retry_after_ms;
///
/// assert_eq!(retry_after_ms("3", 0), Some(3_000));
/// let now = 784_111_777_000; // 1994-11-06T08:49:37Z
/// assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(10_000));
/// assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:27 GMT", now), Some(0));
/// assert_eq!(retry_after_ms("soon", now), None);
/// ```
pub fn retry_after_ms(value: &str, now_unix_ms: u64) -> Option<u64> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.bytes().fold(0u64, |n, digit| {
            n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
        });
        return Some(seconds.saturating_mul(1000));
    }
    let now_year = civil_year(now_unix_ms / 1000);
    let at = http_date(value, now_year)?;
    let now = i64::try_from(now_unix_ms).unwrap_or(i64::MAX);
    let at_ms = at.saturating_mul(1000);
    Some(u64::try_from(at_ms.saturating_sub(now)).unwrap_or(0))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// An HTTP-date as seconds since the Unix epoch (negative before 1970). `now_year` resolves the
/// two-digit years of the obsolete RFC 850 format. The weekday name must be a weekday name, but
/// is not checked against the date (recipients need not).
fn http_date(value: &str, now_year: i64) -> Option<i64> {
    let (weekday, rest) = value.split_once(' ')?;
    let parts: Vec<&str> = rest.split(' ').filter(|p| !p.is_empty()).collect();
    let (year, month, day, time) = if let Some(weekday) = weekday.strip_suffix(',') {
        if DAYS.contains(&weekday) {
            // IMF-fixdate: "06 Nov 1994 08:49:37 GMT".
            let [day, month, year, time, "GMT"] = parts[..] else {
                return None;
            };
            (digits(year, 4, 4)?, month, digits(day, 2, 2)?, time)
        } else if LONG_DAYS.contains(&weekday) {
            // rfc850-date: "06-Nov-94 08:49:37 GMT".
            let [date, time, "GMT"] = parts[..] else {
                return None;
            };
            let mut date = date.split('-');
            let (Some(day), Some(month), Some(year), None) =
                (date.next(), date.next(), date.next(), date.next())
            else {
                return None;
            };
            // "A timestamp that appears to be more than 50 years in the future" is in the past
            // century.
            let mut year = now_year - now_year.rem_euclid(100) + digits(year, 2, 2)?;
            if year > now_year + 50 {
                year -= 100;
            }
            (year, month, digits(day, 2, 2)?, time)
        } else {
            return None;
        }
    } else if DAYS.contains(&weekday) {
        // asctime-date: "Nov  6 08:49:37 1994" (the day is padded with a space, not a zero).
        let [month, day, time, year] = parts[..] else {
            return None;
        };
        (digits(year, 4, 4)?, month, digits(day, 1, 2)?, time)
    } else {
        return None;
    };

    let month = MONTHS.iter().position(|&m| m == month)? + 1;
    let month = u32::try_from(month).ok()?;
    let mut clock = time.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (clock.next(), clock.next(), clock.next(), clock.next())
    else {
        return None;
    };
    let (h, m, s) = (digits(h, 2, 2)?, digits(m, 2, 2)?, digits(s, 2, 2)?);
    // 60 is a leap second.
    if h > 23 || m > 59 || s > 60 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let day = u32::try_from(day).ok()?;
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// A number of `min..=max` ASCII digits.
fn digits(text: &str, min: usize, max: usize) -> Option<i64> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of a Unix time (inverse of [`days_from_civil`], year only).
fn civil_year(unix_secs: u64) -> i64 {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400;
    // January and February belong to the next civil year.
    if month_from_march >= 10 {
        year + 1
    } else {
        year
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z, the RFC's example date.
    const RFC_EXAMPLE: u64 = 784_111_777_000;

    #[test]
    fn delay_seconds() {
        assert_eq!(retry_after_ms("0", RFC_EXAMPLE), Some(0));
        assert_eq!(retry_after_ms("120", RFC_EXAMPLE), Some(120_000));
        assert_eq!(retry_after_ms(" 5\t", RFC_EXAMPLE), Some(5_000));
        assert_eq!(
            retry_after_ms("99999999999999999999999", RFC_EXAMPLE),
            Some(u64::MAX)
        );
        for bad in ["", "-1", "+1", "1.5", "1e3", "5 s", "0x10"] {
            assert_eq!(retry_after_ms(bad, RFC_EXAMPLE), None, "{bad:?}");
        }
    }

    #[test]
    fn the_three_http_date_formats_are_the_same_instant() {
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_ms(date, RFC_EXAMPLE), Some(0), "{date}");
            assert_eq!(
                retry_after_ms(date, RFC_EXAMPLE - 2_500),
                Some(2_500),
                "{date}"
            );
        }
    }

    #[test]
    fn dates_convert_exactly() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT", 2026), Some(0));
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT", 2026),
            Some(784_111_777)
        );
        // A leap day and a leap second.
        assert_eq!(
            http_date("Thu, 29 Feb 2024 23:59:60 GMT", 2026),
            Some(1_709_251_200)
        );
        assert_eq!(
            http_date("Fri, 31 Dec 1965 00:00:00 GMT", 2026),
            Some(-126_316_800)
        );
        assert_eq!(civil_year(0), 1970);
        assert_eq!(civil_year(784_111_777), 1994);
        assert_eq!(civil_year(1_709_251_199), 2024);
        assert_eq!(civil_year(1_704_067_199), 2023);
        assert_eq!(civil_year(1_704_067_200), 2024);
    }

    #[test]
    fn two_digit_years_more_than_50_years_ahead_are_in_the_past_century() {
        // In 2026: 76 means 2076 (50 years ahead), 77 means 1977.
        assert_eq!(
            http_date("Monday, 01-Jan-76 00:00:00 GMT", 2026),
            http_date("Wed, 01 Jan 2076 00:00:00 GMT", 2026)
        );
        assert_eq!(
            http_date("Saturday, 01-Jan-77 00:00:00 GMT", 2026),
            http_date("Sat, 01 Jan 1977 00:00:00 GMT", 2026)
        );
        assert_eq!(
            http_date("Saturday, 01-Jan-00 00:00:00 GMT", 2026),
            http_date("Sat, 01 Jan 2000 00:00:00 GMT", 2026)
        );
    }

    #[test]
    fn malformed_dates_are_ignored() {
        for bad in [
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Funday, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov 08:49:37 GMT",
            "Sun Nov 06 08:49:37",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
            "Sun,",
            "Sun, ",
        ] {
            assert_eq!(retry_after_ms(bad, RFC_EXAMPLE), None, "{bad:?}");
        }
    }

    #[test]
    fn far_dates_do_not_overflow() {
        assert_eq!(
            retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT", 0),
            Some(253_402_300_799_000)
        );
        assert_eq!(
            retry_after_ms("Mon, 01 Jan 0001 00:00:00 GMT", u64::MAX),
            Some(0)
        );
        assert!(civil_year(u64::MAX) > 2026);
    }
}
