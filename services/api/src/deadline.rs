//! The caller's deadline (`grpc-timeout`), for a read that waits for the projector: it waits
//! for part of it and leaves the rest for the read itself.

use std::time::Duration;
use tonic::Request;

/// The longest a read waits for the projector, whatever the deadline.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The time the caller gave the call, when it set one.
pub fn of<T>(request: &Request<T>) -> Option<Duration> {
    parse(request.metadata().get("grpc-timeout")?.to_str().ok()?)
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long to wait for the projector: three quarters of the caller's time (the rest is for
/// the read), at most [`MAX_WAIT`].
pub fn wait_within(deadline: Option<Duration>) -> Duration {
    deadline.map_or(MAX_WAIT, |d| (d * 3 / 4).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_and_leave_time_for_the_read() {
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("S"), None);
        assert_eq!(parse("5x"), None);
        assert_eq!(parse("123456789S"), None);
        assert_eq!(
            wait_within(Some(Duration::from_secs(4))),
            Duration::from_secs(3)
        );
        assert_eq!(wait_within(Some(Duration::from_secs(600))), MAX_WAIT);
        assert_eq!(wait_within(None), MAX_WAIT);
    }
}
