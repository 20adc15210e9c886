//! A connector's live status: its state and counters, shared between the connector task and
//! whoever reports on it.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use trainhub_model::merge::OutcomeStatus;

/// Where a connector is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connecting for the first time.
    Starting,
    /// Connected and consuming.
    Running,
    /// Lost its source and is reconnecting.
    Degraded,
    /// Gave up (configuration the source refuses).
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

    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Running,
            2 => State::Degraded,
            3 => State::Failed,
            4 => State::Stopped,
            _ => State::Starting,
        }
    }
}

/// Counters by outcome, plus received messages.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages received.
    pub received: AtomicU64,
    /// `ACCEPTED`.
    pub accepted: AtomicU64,
    /// `DUPLICATE`.
    pub duplicate: AtomicU64,
    /// `SUPERSEDED`.
    pub superseded: AtomicU64,
    /// `PARKED`.
    pub parked: AtomicU64,
    /// `REJECTED` (and dead-lettered).
    pub rejected: AtomicU64,
}

/// The status of one connector.
#[derive(Debug)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    state: AtomicU8,
    last_error: Mutex<Option<String>>,
    /// Counters since start.
    pub counters: Counters,
}

impl ConnectorStatus {
    /// A connector that is starting.
    pub fn new(name: impl Into<String>) -> ConnectorStatus {
        ConnectorStatus {
            name: name.into(),
            state: AtomicU8::new(0),
            last_error: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Moves to `state`.
    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// The last error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("not poisoned").clone()
    }

    /// Records an error and moves to `state`.
    pub fn fail(&self, state: State, error: impl Into<String>) {
        *self.last_error.lock().expect("not poisoned") = Some(error.into());
        self.set_state(state);
    }

    /// Counts the outcomes of a committed batch.
    pub fn count(&self, statuses: &[OutcomeStatus]) {
        let c = &self.counters;
        c.received
            .fetch_add(statuses.len() as u64, Ordering::Relaxed);
        for s in statuses {
            let counter = match s {
                OutcomeStatus::Accepted => &c.accepted,
                OutcomeStatus::Duplicate => &c.duplicate,
                OutcomeStatus::Superseded => &c.superseded,
                OutcomeStatus::Parked => &c.parked,
                OutcomeStatus::Rejected => &c.rejected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}
