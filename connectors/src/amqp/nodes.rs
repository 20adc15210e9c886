//! The addresses of a broker cluster and the backoff between rounds of tries.

use std::time::Duration;

/// Exponential backoff from 100 ms to 30 s with ±50 % jitter, so that many hubs losing the
/// same broker do not return in step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The next wait.
    pub fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        base.mul_f64(0.5 + rand::random::<f64>())
    }

    /// Back to the shortest wait, after a success.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// The addresses of a broker cluster, tried in turn: after a failure the next node is tried at
/// once; only when every node has failed in a row does the backoff wait.
#[derive(Debug)]
pub struct Nodes {
    urls: Vec<String>,
    at: usize,
    failed_in_row: usize,
    backoff: Backoff,
}

impl Nodes {
    /// Starts at the first address.
    pub fn new(urls: Vec<String>) -> Nodes {
        assert!(!urls.is_empty(), "at least one broker address");
        Nodes {
            urls,
            at: 0,
            failed_in_row: 0,
            backoff: Backoff::default(),
        }
    }

    /// The address to connect to now.
    pub fn current(&self) -> &str {
        &self.urls[self.at]
    }

    /// Which address is current (0 is `url`).
    pub fn index(&self) -> usize {
        self.at
    }

    /// The current node is lost: moves to the next and says how long to wait first.
    pub fn lost(&mut self) -> Duration {
        self.at = (self.at + 1) % self.urls.len();
        self.failed_in_row += 1;
        if self.failed_in_row.is_multiple_of(self.urls.len()) {
            self.backoff.wait()
        } else {
            Duration::ZERO
        }
    }

    /// A connection worked: the next failure starts a fresh round.
    pub fn connected(&mut self) {
        self.failed_in_row = 0;
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> super::super::AmqpConfig {
        serde_json::from_str(
            r#"{"name":"hr-queue","system":"hr-prov","url":"amqp://guest:guest@127.0.0.1:5672/%2f"}"#,
        )
        .expect("valid config")
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        let first = b.wait();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        for _ in 0..20 {
            assert!(b.wait() <= Duration::from_secs(45));
        }
        b.reset();
        assert!(b.wait() <= Duration::from_millis(150));
    }

    #[test]
    fn nodes_are_tried_in_turn_and_backoff_waits_only_after_a_full_round() {
        let mut c = config();
        c.fallback_urls = vec!["amqp://b".into(), "amqp://c".into()];
        let mut nodes = Nodes::new(c.addresses());
        assert_eq!(nodes.current(), c.url);
        assert_eq!(nodes.lost(), Duration::ZERO);
        assert_eq!(nodes.current(), "amqp://b");
        assert_eq!(nodes.lost(), Duration::ZERO);
        assert_eq!(nodes.current(), "amqp://c");
        assert!(nodes.lost() > Duration::ZERO, "all three failed: wait");
        assert_eq!(nodes.current(), c.url);
        nodes.connected();
        assert_eq!(
            nodes.lost(),
            Duration::ZERO,
            "a fresh round after a connection"
        );
        assert_eq!(nodes.index(), 1);
    }
}
