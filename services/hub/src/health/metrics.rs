//! The instruments every count goes to, exported on `/metrics` (and by OTLP when configured).

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;
use std::collections::BTreeMap;
use trainhub_connectors::status::{CountSink, Verdict};
use trainhub_model::merge::OutcomeStatus;

/// The instruments every count goes to.
#[derive(Debug)]
pub struct Metrics {
    pub(super) received: Counter<u64>,
    pub(super) by_status: BTreeMap<&'static str, Counter<u64>>,
    pub(super) rejected: Counter<u64>,
    pub(super) dead_lettered: Counter<u64>,
    pub(super) sent: Counter<u64>,
    pub(super) statements: Counter<u64>,
    pub(super) refused_requests: Counter<u64>,
    pub(super) commit_latency: Histogram<f64>,
}

impl Metrics {
    pub(super) fn new(meter: &Meter) -> Metrics {
        let counter = |name: &'static str, help: &'static str| {
            meter.u64_counter(name).with_description(help).build()
        };
        let by_status = [
            (
                "accepted",
                "trainhub_component_accepted_records",
                "Records stored and attached to their person.",
            ),
            (
                "duplicate",
                "trainhub_component_duplicate_records",
                "Records already stored with the same version.",
            ),
            (
                "superseded",
                "trainhub_component_superseded_records",
                "Records older than the stored version.",
            ),
            (
                "parked",
                "trainhub_component_parked_records",
                "Records stored whose person is not known yet.",
            ),
        ]
        .into_iter()
        .map(|(status, name, help)| (status, counter(name, help)))
        .collect();
        Metrics {
            received: counter(
                "trainhub_component_received_records",
                "Records received and answered, by connector.",
            ),
            by_status,
            rejected: counter(
                "trainhub_component_rejected_records",
                "Records refused, by connector, stage and reason.",
            ),
            dead_lettered: counter(
                "trainhub_component_dead_lettered",
                "Records written to the dead-letter table, by connector.",
            ),
            sent: counter(
                "trainhub_component_sent_records",
                "Messages published and confirmed (dossier.changed events), by connector.",
            ),
            statements: counter(
                "trainhub_component_received_statements",
                "xAPI statements stored, by connector (xapi/<system>).",
            ),
            refused_requests: counter(
                "trainhub_component_refused_requests",
                "xAPI requests refused and answered 4xx/5xx (nothing of them stored), by \
                 connector and reason.",
            ),
            commit_latency: meter
                .f64_histogram("trainhub_commit_latency_seconds")
                .with_description("Time to commit one batch, by connector.")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .build(),
        }
    }
}

impl CountSink for Metrics {
    fn statements(&self, name: &str, n: u64) {
        self.statements
            .add(n, &[KeyValue::new("connector", name.to_owned())]);
    }

    fn sent(&self, name: &str, n: u64) {
        self.sent
            .add(n, &[KeyValue::new("connector", name.to_owned())]);
    }

    fn verdicts(&self, name: &str, verdicts: &[Verdict]) {
        let connector = [KeyValue::new("connector", name.to_owned())];
        self.received.add(verdicts.len() as u64, &connector);
        for v in verdicts {
            match v.status {
                OutcomeStatus::Rejected => {
                    self.rejected.add(
                        1,
                        &[
                            KeyValue::new("connector", name.to_owned()),
                            KeyValue::new("stage", v.stage),
                            KeyValue::new("reason", v.reason),
                        ],
                    );
                    self.dead_lettered.add(1, &connector);
                }
                other => self.by_status[other.as_str()].add(1, &connector),
            }
        }
    }
}
