//! A connector's live status (DESIGN §8): the state machine, the last error and success,
//! counters, throughput over the last minute and lag — shared between the connector task and
//! whoever reports on it (`SyncHealthService`, `/metrics`, the dashboard, `trainhub status`).
//!
//! States: `starting` → `running` ↔ `degraded` → `failed`, and `stopped` on shutdown. A
//! connector is `degraded` while it cannot reach its source (or a partner has been silent too
//! long) and `failed` once that has lasted past its limit; it returns to `running` by itself
//! when the source is back. Health never says ready while a connector has failed.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use trainhub_model::merge::OutcomeStatus;

/// Where a connector is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connecting for the first time, or no record seen yet.
    Starting,
    /// Connected and consuming.
    Running,
    /// Lost its source (reconnecting), or a partner silent past its limit.
    Degraded,
    /// Degraded for longer than its limit; still trying.
    Failed,
    /// Stopped on shutdown.
    Stopped,
}

impl State {
    /// The state's name in status reports.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Degraded => "degraded",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }

    /// A number for the state gauge: 0 starting, 1 running, 2 degraded, 3 failed, 4 stopped.
    pub fn gauge(self) -> i64 {
        self as i64
    }
}

/// What went wrong last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Stage: `connect`, `decode`, `validate`, `identity`, `store`, `publish`, `silence` …
    pub stage: String,
    /// A stable reason code, e.g. `BROKER_UNREACHABLE`, `STORE_UNAVAILABLE`, `UNKNOWN_CODE`.
    pub reason: String,
    /// A sentence for the operator.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

pub use trainhub_pipeline::Verdict;

/// Counters by outcome, plus received messages.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records received (and answered).
    pub received: AtomicU64,
    /// `ACCEPTED`.
    pub accepted: AtomicU64,
    /// `DUPLICATE`.
    pub duplicate: AtomicU64,
    /// `SUPERSEDED`.
    pub superseded: AtomicU64,
    /// `PARKED`.
    pub parked: AtomicU64,
    /// `REJECTED` — every one is dead-lettered in the same transaction.
    pub rejected: AtomicU64,
    /// Messages published (the outbox relay: events confirmed by the broker).
    pub sent: AtomicU64,
    /// xAPI statements stored (an xAPI source; each makes one record or none).
    pub statements: AtomicU64,
}

/// Where the counters go besides the status: the metrics instruments.
pub trait CountSink: Send + Sync + std::fmt::Debug {
    /// Records a batch of verdicts of connector `name`.
    fn verdicts(&self, name: &str, verdicts: &[Verdict]);
    /// Records `n` messages published by connector `name`.
    fn sent(&self, name: &str, n: u64);
    /// Records `n` xAPI statements stored by connector `name`.
    fn statements(&self, name: &str, n: u64);
}

#[derive(Debug)]
struct Inner {
    state: State,
    since: DateTime<Utc>,
    /// When the current trouble began; `None` while working.
    down_since: Option<Instant>,
    last_error: Option<LastError>,
    last_success: Option<DateTime<Utc>>,
    last_received: Option<Instant>,
    queue_depth: Option<u64>,
    in_flight: VecDeque<Instant>,
    /// Records per second over the last minute: (second, count).
    buckets: [(u64, u64); 60],
    /// Counts a partner reported for a period, and what the hub stored then.
    reconciliation: Vec<Reconciliation>,
}

/// A partner's own count for a period against what the hub stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Kind counted (empty for all).
    pub kind: String,
    /// Period start (RFC 3339).
    pub period_start: String,
    /// Period end (RFC 3339).
    pub period_end: String,
    /// The partner's count.
    pub reported: i64,
    /// Distinct records the hub received from the partner in the period.
    pub stored: i64,
}

/// The status of one connector.
#[derive(Debug)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    /// `amqp`, `grpc`, `outbox`, …
    pub kind: &'static str,
    /// A partner silent this long turns `degraded`; a source unreachable this long `failed`.
    pub max_silence: Option<Duration>,
    inner: Mutex<Inner>,
    /// Counters since start.
    pub counters: Counters,
    sink: Option<std::sync::Arc<dyn CountSink>>,
    started: Instant,
    epoch: u64,
}

/// A point-in-time copy of a status, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Connector name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: State,
    /// Since when (RFC 3339).
    pub since: String,
    /// Last error.
    pub last_error: Option<LastError>,
    /// Last successful commit or publish (RFC 3339).
    pub last_success: Option<String>,
    /// received, accepted, duplicate, superseded, parked, rejected, sent, statements.
    pub counts: [u64; 8],
    /// Records in the last 60 s.
    pub last_minute: u64,
    /// Records per second, oldest first, over the last 60 s.
    pub sparkline: Vec<u64>,
    /// Messages waiting in the source (AMQP: ready messages in the queue).
    pub queue_depth: Option<u64>,
    /// Seconds the oldest received-but-unacknowledged message has waited.
    pub oldest_unacked_seconds: Option<f64>,
    /// Seconds since the source last sent anything.
    pub silence_seconds: Option<f64>,
    /// Partner-reported counts against what was stored.
    pub reconciliation: Vec<Reconciliation>,
}

impl ConnectorStatus {
    /// A connector that is starting.
    pub fn new(name: impl Into<String>, kind: &'static str) -> ConnectorStatus {
        ConnectorStatus {
            name: name.into(),
            kind,
            max_silence: None,
            inner: Mutex::new(Inner {
                state: State::Starting,
                since: Utc::now(),
                down_since: None,
                last_error: None,
                last_success: None,
                last_received: None,
                queue_depth: None,
                in_flight: VecDeque::new(),
                buckets: [(0, 0); 60],
                reconciliation: Vec::new(),
            }),
            counters: Counters::default(),
            sink: None,
            started: Instant::now(),
            epoch: Utc::now().timestamp().max(0) as u64,
        }
    }

    /// The same, counting into `sink` too.
    pub fn with_sink(mut self, sink: std::sync::Arc<dyn CountSink>) -> ConnectorStatus {
        self.sink = Some(sink);
        self
    }

    /// The same, with a silence or outage limit.
    pub fn with_max_silence(mut self, limit: Option<Duration>) -> ConnectorStatus {
        self.max_silence = limit;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("status lock is never poisoned")
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.lock().state
    }

    fn set(inner: &mut Inner, state: State) {
        if state == State::Running {
            inner.down_since = None;
        }
        if inner.state != state {
            inner.state = state;
            inner.since = Utc::now();
        }
    }

    /// Moves to `state` (keeping the last error).
    pub fn set_state(&self, state: State) {
        Self::set(&mut self.lock(), state);
    }

    /// Connected (again): `running`.
    pub fn running(&self) {
        self.set_state(State::Running);
    }

    /// The last error, if any.
    pub fn last_error(&self) -> Option<LastError> {
        self.lock().last_error.clone()
    }

    /// Records an error and moves to `degraded`, or to `failed` once the trouble has lasted
    /// `fail_after` (counted from the first error since the connector last worked); `None`
    /// never fails.
    pub fn trouble(
        &self,
        stage: &str,
        reason: &str,
        message: impl Into<String>,
        fail_after: Option<Duration>,
    ) {
        let mut inner = self.lock();
        inner.last_error = Some(LastError {
            stage: stage.into(),
            reason: reason.into(),
            message: message.into(),
            at: Utc::now(),
        });
        let down_for = inner.down_since.get_or_insert_with(Instant::now).elapsed();
        let state = match fail_after {
            Some(limit) if down_for >= limit => State::Failed,
            _ => State::Degraded,
        };
        Self::set(&mut inner, state);
    }

    /// Something the source sent was refused and its sender told why (an xAPI request
    /// answered 4xx): the last error, the state unchanged.
    pub fn refused(&self, stage: &str, reason: &str, message: impl Into<String>) {
        self.lock().last_error = Some(LastError {
            stage: stage.into(),
            reason: reason.into(),
            message: message.into(),
            at: Utc::now(),
        });
    }

    /// A commit or publish succeeded: `running`, and the time noted.
    pub fn succeeded(&self) {
        let mut inner = self.lock();
        inner.last_success = Some(Utc::now());
        Self::set(&mut inner, State::Running);
    }

    /// Counts the outcomes of a committed batch and notes the success.
    pub fn count(&self, verdicts: &[Verdict]) {
        let c = &self.counters;
        c.received
            .fetch_add(verdicts.len() as u64, Ordering::Relaxed);
        for v in verdicts {
            let counter = match v.status {
                OutcomeStatus::Accepted => &c.accepted,
                OutcomeStatus::Duplicate => &c.duplicate,
                OutcomeStatus::Superseded => &c.superseded,
                OutcomeStatus::Parked => &c.parked,
                OutcomeStatus::Rejected => &c.rejected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(sink) = &self.sink {
            sink.verdicts(&self.name, verdicts);
        }
        {
            let mut inner = self.lock();
            self.tally(&mut inner, verdicts.len() as u64);
            inner.last_received = Some(Instant::now());
        }
        self.succeeded();
    }

    /// Adds `n` to the current second's throughput bucket.
    fn tally(&self, inner: &mut Inner, n: u64) {
        let second = self.epoch + self.started.elapsed().as_secs();
        let bucket = &mut inner.buckets[(second % 60) as usize];
        if bucket.0 != second {
            *bucket = (second, 0);
        }
        bucket.1 += n;
    }

    /// `n` xAPI statements were stored (the records they made are counted by
    /// [`ConnectorStatus::count`]).
    pub fn statements(&self, n: u64) {
        self.counters.statements.fetch_add(n, Ordering::Relaxed);
        if let Some(sink) = &self.sink {
            sink.statements(&self.name, n);
        }
        self.heard();
        self.succeeded();
    }

    /// The source (or partner) sent something: its silence ends, and a partner degraded only
    /// for its silence is running again.
    pub fn heard(&self) {
        let mut inner = self.lock();
        inner.last_received = Some(Instant::now());
        let silent = inner
            .last_error
            .as_ref()
            .is_some_and(|e| e.reason == "PARTNER_SILENT");
        if inner.state == State::Starting || (inner.state == State::Degraded && silent) {
            Self::set(&mut inner, State::Running);
        }
    }

    /// `n` messages were published and confirmed.
    pub fn sent(&self, n: u64) {
        self.counters.sent.fetch_add(n, Ordering::Relaxed);
        if let Some(sink) = &self.sink {
            sink.sent(&self.name, n);
        }
        self.tally(&mut self.lock(), n);
        self.succeeded();
    }

    /// Messages waiting in the source.
    pub fn set_queue_depth(&self, depth: Option<u64>) {
        self.lock().queue_depth = depth;
    }

    /// A batch received at `at` is now in flight (not yet acknowledged).
    pub fn in_flight_push(&self, at: Instant) {
        self.lock().in_flight.push_back(at);
    }

    /// The oldest batch in flight was acknowledged (or given back).
    pub fn in_flight_pop(&self) {
        self.lock().in_flight.pop_front();
    }

    /// Nothing is in flight any more (the connection was lost).
    pub fn in_flight_clear(&self) {
        self.lock().in_flight.clear();
    }

    /// Notes a partner's own count for a period against what the hub stored.
    pub fn reconcile(&self, r: Reconciliation) {
        let mut inner = self.lock();
        inner.reconciliation.retain(|x| {
            (&x.kind, &x.period_start, &x.period_end) != (&r.kind, &r.period_start, &r.period_end)
        });
        inner.reconciliation.push(r);
        let n = inner.reconciliation.len();
        if n > 20 {
            inner.reconciliation.drain(..n - 20);
        }
    }

    /// Turns a running partner `degraded` when it has been silent past its limit, and back to
    /// `running` when it speaks again (that happens in [`ConnectorStatus::count`]).
    pub fn check_silence(&self) {
        let Some(limit) = self.max_silence else {
            return;
        };
        let mut inner = self.lock();
        let silent = match inner.last_received {
            Some(t) => t.elapsed(),
            None => self.started.elapsed(),
        };
        if silent > limit && matches!(inner.state, State::Running | State::Starting) {
            inner.last_error = Some(LastError {
                stage: "silence".into(),
                reason: "PARTNER_SILENT".into(),
                message: format!(
                    "nothing received for {} s (limit {} s)",
                    silent.as_secs(),
                    limit.as_secs()
                ),
                at: Utc::now(),
            });
            Self::set(&mut inner, State::Degraded);
        }
    }

    /// A copy for reports.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let c = &self.counters;
        let now = self.epoch + self.started.elapsed().as_secs();
        let sparkline: Vec<u64> = (0..60u64)
            .rev()
            .map(|back| {
                let second = now.saturating_sub(back);
                let b = inner.buckets[(second % 60) as usize];
                if b.0 == second {
                    b.1
                } else {
                    0
                }
            })
            .collect();
        Snapshot {
            name: self.name.clone(),
            kind: self.kind.to_owned(),
            state: inner.state,
            since: inner.since.to_rfc3339(),
            last_error: inner.last_error.clone(),
            last_success: inner.last_success.map(|t| t.to_rfc3339()),
            counts: [
                c.received.load(Ordering::Relaxed),
                c.accepted.load(Ordering::Relaxed),
                c.duplicate.load(Ordering::Relaxed),
                c.superseded.load(Ordering::Relaxed),
                c.parked.load(Ordering::Relaxed),
                c.rejected.load(Ordering::Relaxed),
                c.sent.load(Ordering::Relaxed),
                c.statements.load(Ordering::Relaxed),
            ],
            last_minute: sparkline.iter().sum(),
            sparkline,
            queue_depth: inner.queue_depth,
            oldest_unacked_seconds: inner.in_flight.front().map(|t| t.elapsed().as_secs_f64()),
            silence_seconds: inner.last_received.map(|t| t.elapsed().as_secs_f64()),
            reconciliation: inner.reconciliation.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_throughput_and_transitions() {
        let s = ConnectorStatus::new("q", "amqp");
        assert_eq!(s.state(), State::Starting);
        s.count(&[
            Verdict::stored(OutcomeStatus::Accepted),
            Verdict::stored(OutcomeStatus::Duplicate),
            Verdict {
                status: OutcomeStatus::Rejected,
                stage: "validate",
                reason: "BAD_DATE",
            },
        ]);
        let snap = s.snapshot();
        assert_eq!(snap.state, State::Running);
        assert_eq!(snap.counts, [3, 1, 1, 0, 0, 1, 0, 0]);
        assert_eq!(snap.last_minute, 3);
        assert_eq!(snap.sparkline.len(), 60);
        assert!(snap.last_success.is_some());
        let short = Duration::from_secs(1);
        s.trouble("connect", "BROKER_UNREACHABLE", "refused", Some(short));
        assert_eq!(s.state(), State::Degraded);
        s.trouble(
            "connect",
            "BROKER_UNREACHABLE",
            "refused",
            Some(Duration::ZERO),
        );
        assert_eq!(s.state(), State::Failed);
        assert_eq!(s.last_error().unwrap().reason, "BROKER_UNREACHABLE");
        s.running();
        assert_eq!(s.state(), State::Running);
    }

    #[test]
    fn a_silent_partner_degrades_and_recovers_when_it_speaks() {
        let s = ConnectorStatus::new("grpc/hr", "grpc").with_max_silence(Some(Duration::ZERO));
        s.count(&[Verdict::stored(OutcomeStatus::Accepted)]);
        std::thread::sleep(Duration::from_millis(5));
        s.check_silence();
        assert_eq!(s.state(), State::Degraded);
        assert_eq!(s.last_error().unwrap().reason, "PARTNER_SILENT");
        s.count(&[Verdict::stored(OutcomeStatus::Accepted)]);
        assert_eq!(s.state(), State::Running);
    }
}
