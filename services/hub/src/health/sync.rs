//! What `SyncHealthService` reads of the registry, and the registry as the pipeline's commit
//! observer.

use super::Registry;
use opentelemetry::KeyValue;
use std::collections::BTreeMap;
use std::time::Duration;
use trainhub_api::sync_health::StatusSource;
use trainhub_connectors::status::{Reconciliation, Snapshot, Verdict};
use trainhub_pipeline::{CommitObserver, Outcome};
use trainhub_proto::v1 as pb;

/// Seconds between two publications of this instance's status to the store.
pub(super) const PUBLISH_EVERY: u64 = 5;

/// A status as sent by `SyncHealthService`.
pub fn to_wire(s: Snapshot, instance: &str) -> pb::ConnectorStatus {
    pb::ConnectorStatus {
        name: s.name,
        kind: s.kind,
        state: s.state.as_str().into(),
        since: s.since,
        last_error: s.last_error.map(|e| pb::ConnectorError {
            stage: e.stage,
            reason: e.reason,
            message: e.message,
            at: e.at.to_rfc3339(),
        }),
        last_success: s.last_success.unwrap_or_default(),
        counters: Some(pb::ConnectorCounters {
            received: s.counts[0],
            accepted: s.counts[1],
            duplicate: s.counts[2],
            superseded: s.counts[3],
            parked: s.counts[4],
            rejected: s.counts[5],
            sent: s.counts[6],
            statements: s.counts[7],
        }),
        last_minute: s.last_minute,
        sparkline: s.sparkline,
        queue_depth: s.queue_depth.map_or(-1, |d| d as i64),
        oldest_unacked_seconds: s.oldest_unacked_seconds.unwrap_or(0.0),
        silence_seconds: s.silence_seconds.unwrap_or(-1.0),
        reconciliation: s
            .reconciliation
            .into_iter()
            .map(|r| pb::Reconciliation {
                kind: r.kind,
                period_start: r.period_start,
                period_end: r.period_end,
                reported: r.reported,
                stored: r.stored,
            })
            .collect(),
        instance: instance.to_owned(),
    }
}

impl StatusSource for Registry {
    fn connectors(&self) -> Vec<pb::ConnectorStatus> {
        self.snapshots()
            .into_iter()
            .map(|s| to_wire(s, &self.instance))
            .collect()
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    fn instance(&self) -> String {
        self.instance.clone()
    }

    fn reconcile(&self, system: &str, r: pb::Reconciliation) {
        self.partner(system).reconcile(Reconciliation {
            kind: r.kind,
            period_start: r.period_start,
            period_end: r.period_end,
            reported: r.reported,
            stored: r.stored,
        });
    }
}

impl CommitObserver for Registry {
    fn committed(&self, connector: &str, outcomes: &[Outcome], latency: Duration) {
        self.metrics.commit_latency.record(
            latency.as_secs_f64(),
            &[KeyValue::new("connector", connector.to_owned())],
        );
        let xapi = connector.strip_prefix("xapi/");
        if connector != trainhub_api::ingest::GRPC_CONNECTOR && xapi.is_none() {
            // AMQP connectors count what they acknowledge.
            return;
        }
        if let Some(system) = xapi {
            let verdicts: Vec<Verdict> = outcomes.iter().map(Verdict::of).collect();
            self.xapi(system).count(&verdicts);
            return;
        }
        let mut by_system: BTreeMap<&str, Vec<Verdict>> = BTreeMap::new();
        for o in outcomes {
            by_system
                .entry(o.system.as_str())
                .or_default()
                .push(Verdict::of(o));
        }
        for (system, verdicts) in by_system {
            let system = if system.is_empty() { "unknown" } else { system };
            self.partner(system).count(&verdicts);
        }
    }
}

impl trainhub_connectors::xapi::resource::Report for Registry {
    // Whatever a partner sends over xAPI, stored or refused, ends its silence.
    fn statements(&self, system: &str, statements: u64) {
        self.partner(system).heard();
        self.xapi(system).statements(statements);
    }

    fn refused(&self, system: &str, status: u16, why: &str) {
        self.partner(system).heard();
        let source = self.xapi(system);
        let reason = match status {
            503 => "STORE_UNAVAILABLE",
            409 => "STATEMENT_CONFLICT",
            _ => "INVALID_STATEMENT",
        };
        match status {
            503 => source.trouble("store", reason, why, None),
            409 => source.refused("receive", reason, why),
            _ => source.refused("validate", reason, why),
        }
        self.metrics.refused_requests.add(
            1,
            &[
                KeyValue::new("connector", source.name.clone()),
                KeyValue::new("reason", reason),
            ],
        );
    }
}
