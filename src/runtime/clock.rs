//! The one place the edges read the calendar: the engine takes "today" as input and never
//! reads a clock itself.

/// Today's date in UTC, the day against which release and end-of-support dates are compared.
pub fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}
