//! The ingest pipeline every path shares (DESIGN §1): decode → validate → resolve → commit.
//! Outcomes are returned only after the batch's transaction has committed.

use crate::convert;
use prost::Message;
use std::sync::Arc;
use trainhub_model::merge::OutcomeStatus;
use trainhub_model::policy::Policy;
use trainhub_model::{PersonKeyer, Rejection};
use trainhub_proto::v1 as pb;
use trainhub_store::{DeadLetterInput, PreparedRecord, Store};

/// What the pipeline needs: the store, the person keyer and the rules.
#[derive(Clone, Debug)]
pub struct Pipeline {
    store: Store,
    keyer: PersonKeyer,
    policy: Arc<Policy>,
}

/// One record's outcome, ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Record id as sent.
    pub record_id: String,
    /// Kind as sent.
    pub kind: String,
    /// What happened.
    pub status: OutcomeStatus,
    /// Why it was rejected, if it was.
    pub rejection: Option<Rejection>,
}

impl Pipeline {
    /// A pipeline over `store`.
    pub fn new(store: Store, keyer: PersonKeyer, policy: Arc<Policy>) -> Self {
        Pipeline {
            store,
            keyer,
            policy,
        }
    }

    /// The store behind the pipeline.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The person keyer.
    pub fn keyer(&self) -> &PersonKeyer {
        &self.keyer
    }

    /// The rules in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Validates and commits `records` received by `connector`; one outcome per record, in
    /// order. Rejected records are dead-lettered in the same transaction.
    #[tracing::instrument(skip_all, fields(connector = connector, records = records.len()))]
    pub async fn submit(
        &self,
        connector: &str,
        records: &[pb::Record],
    ) -> Result<Vec<Outcome>, trainhub_store::Error> {
        let mut prepared = Vec::with_capacity(records.len());
        let mut rejects = Vec::new();
        // For each input: Ok(index into prepared) or Err(index into rejects).
        let mut slots = Vec::with_capacity(records.len());
        for record in records {
            let raw = record.encode_to_vec();
            match convert::canonical(record, &self.keyer) {
                Ok(canonical) => {
                    slots.push(Ok(prepared.len()));
                    prepared.push(PreparedRecord::new(&canonical, raw, ""));
                }
                Err(rejection) => {
                    let source = record.source.clone().unwrap_or_default();
                    slots.push(Err(rejects.len()));
                    rejects.push(DeadLetterInput {
                        rejection,
                        system: source.system,
                        kind: source.kind,
                        record_id: source.record_id,
                        payload: raw,
                    });
                }
            }
        }
        let committed = self
            .store
            .commit_batch(connector, &prepared, &rejects)
            .await?;
        let outcomes = records
            .iter()
            .zip(slots)
            .map(|(record, slot)| {
                let source = record.source.clone().unwrap_or_default();
                let (status, rejection) = match slot {
                    Ok(i) => (committed.statuses[i], None),
                    Err(i) => (OutcomeStatus::Rejected, Some(rejects[i].rejection.clone())),
                };
                Outcome {
                    record_id: source.record_id,
                    kind: source.kind,
                    status,
                    rejection,
                }
            })
            .collect::<Vec<_>>();
        if !rejects.is_empty() {
            tracing::info!(
                rejected = rejects.len(),
                "Records rejected and dead-lettered."
            );
        }
        Ok(outcomes)
    }
}

impl From<Outcome> for pb::RecordOutcome {
    fn from(o: Outcome) -> Self {
        let status = match o.status {
            OutcomeStatus::Accepted => pb::RecordStatus::Accepted,
            OutcomeStatus::Duplicate => pb::RecordStatus::Duplicate,
            OutcomeStatus::Superseded => pb::RecordStatus::Superseded,
            OutcomeStatus::Parked => pb::RecordStatus::Parked,
            OutcomeStatus::Rejected => pb::RecordStatus::Rejected,
        };
        let (reason_code, message) = match o.rejection {
            Some(r) => (r.code.as_str().to_owned(), r.describe()),
            None => (String::new(), String::new()),
        };
        pb::RecordOutcome {
            record_id: o.record_id,
            kind: o.kind,
            status: status as i32,
            reason_code,
            message,
        }
    }
}
