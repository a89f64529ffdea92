//! The one place the edges read the calendar: the engine takes "today" as input and never
//! reads a clock itself.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds added to the system clock: set only by the hidden `--test-clock-offset-seconds` flag,
/// so that an e2e test can reach a date boundary (an exception's expiry) in seconds.
static OFFSET_SECONDS: AtomicI64 = AtomicI64::new(0);

pub fn set_test_offset_seconds(seconds: i64) {
    OFFSET_SECONDS.store(seconds, Ordering::Relaxed);
}

/// The current instant, as the policy dates see it.
pub fn now() -> jiff::Timestamp {
    let offset = OFFSET_SECONDS.load(Ordering::Relaxed);
    let now = jiff::Timestamp::now();
    now.checked_add(jiff::SignedDuration::from_secs(offset))
        .unwrap_or(now)
}

/// Today's date in UTC, the day against which release and end-of-support dates are compared.
pub fn today_utc() -> jiff::civil::Date {
    now().to_zoned(jiff::tz::TimeZone::UTC).date()
}
