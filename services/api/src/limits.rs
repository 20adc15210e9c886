//! Limits that keep one partner from starving the others (DESIGN §8): records per batch, a
//! rate of records per second per partner (a token bucket), and — applied by the server —
//! message size, request deadlines and calls in flight per connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tonic::Status;

/// The ingest limits in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most records in one `SubmitRequest`.
    pub max_batch_records: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// A call still running after this long is cancelled with `DEADLINE_EXCEEDED`.
    pub request_timeout: Duration,
    /// Calls served at once on one connection; more wait.
    pub concurrency_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_records: 10_000,
            max_message_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            concurrency_per_connection: 32,
        }
    }
}

impl Limits {
    /// Refuses a batch larger than the limit.
    pub fn check_batch(&self, records: usize) -> Result<(), Status> {
        if records > self.max_batch_records {
            return Err(Status::invalid_argument(format!(
                "a batch holds at most {} records, not {records}: split it",
                self.max_batch_records
            )));
        }
        Ok(())
    }
}

/// One partner's bucket: up to `rate` records a second, with a burst of one second's worth.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per partner.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes `records` tokens from `partner`'s bucket of `rate` records a second, or refuses
    /// with `RESOURCE_EXHAUSTED` and how long to wait (also as `retry-after` seconds and
    /// `grpc-retry-pushback-ms` metadata). A batch larger than one second's worth is let
    /// through when the bucket is full, so that no batch is refused forever.
    pub fn take(&self, partner: &str, rate: u32, records: usize) -> Result<(), Status> {
        let rate = f64::from(rate.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let bucket = buckets.entry(partner.to_owned()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        let wanted = (records as f64).min(rate);
        if bucket.tokens >= wanted {
            bucket.tokens -= records as f64;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((wanted - bucket.tokens) / rate);
        let millis = wait.as_millis().max(1);
        let mut status = Status::resource_exhausted(format!(
            "`{partner}` is over its limit of {rate} records a second; retry in {millis} ms"
        ));
        let metadata = status.metadata_mut();
        if let Ok(v) = millis.to_string().parse() {
            metadata.insert("grpc-retry-pushback-ms", v);
        }
        if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
            metadata.insert("retry-after", v);
        }
        Err(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_rate_then_refuses_with_a_hint() {
        let limiter = RateLimiter::default();
        assert!(limiter.take("a", 100, 60).is_ok());
        assert!(limiter.take("a", 100, 40).is_ok());
        let refused = limiter.take("a", 100, 50).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let pushback: u64 = refused
            .metadata()
            .get("grpc-retry-pushback-ms")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pushback > 0 && pushback <= 1_000, "{pushback}");
        // Another partner's bucket is its own.
        assert!(limiter.take("b", 100, 100).is_ok());
    }

    #[test]
    fn a_batch_over_one_seconds_worth_passes_on_a_full_bucket() {
        let limiter = RateLimiter::default();
        assert!(limiter.take("a", 10, 500).is_ok());
        assert!(limiter.take("a", 10, 1).is_err(), "the bucket is in debt");
    }

    #[test]
    fn oversized_batches_are_refused() {
        let limits = Limits {
            max_batch_records: 3,
            ..Limits::default()
        };
        assert!(limits.check_batch(3).is_ok());
        assert_eq!(
            limits.check_batch(4).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
