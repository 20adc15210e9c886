//! Dead-letter replay: the kept bytes run through the pipeline again, as the connector that
//! received them runs now (same connector name, its current system scope). A letter whose
//! record is now stored is marked replayed in the same transaction; one still refused stays
//! dead. Either way the letter keeps its first refusal and gains a line of history per
//! attempt. Nothing is deleted. A partner's own format is decoded again by the binary's
//! [`crate::NativeDecoder`], with the mapping profile's current version.

use crate::native::Letter;
use crate::{Inbound, Outcome, Pipeline};
use std::collections::BTreeMap;
use trainhub_model::{ReasonCode, Rejection, Stage};
use trainhub_proto::Format;
use trainhub_store::read::{DeadLetter, LetterFilter};

/// Letters replayed per transaction.
const BATCH: usize = 500;
/// How long a replay holds its letters against other replays (it releases them when done).
const LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// One replayed letter and its new outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// The dead letter's id.
    pub id: i64,
    /// What the pipeline did with it this time.
    pub outcome: Outcome,
}

impl Pipeline {
    /// Replays the unreplayed letters matching `filter`, at most `limit`, oldest first.
    pub async fn replay(
        &self,
        filter: &LetterFilter,
        limit: i64,
    ) -> Result<Vec<Replayed>, trainhub_store::Error> {
        let filter = LetterFilter {
            include_replayed: false,
            ..filter.clone()
        };
        let mut letters = self.store().dead_letters(&filter, None, limit).await?;
        letters.reverse();
        // Another instance (or operator) replaying the same letters now keeps those it claimed.
        let claimant = format!("replay-{:016x}", rand::random::<u64>());
        let ids: Vec<i64> = letters.iter().map(|l| l.id).collect();
        let claimed = self.store().claim_letters(&ids, &claimant, LEASE).await?;
        letters.retain(|l| claimed.binary_search(&l.id).is_ok());
        let result = self.replay_claimed(letters).await;
        if let Err(e) = self.store().release_letters(&claimant).await {
            // The lease ends by itself; until then other replays skip these letters.
            tracing::warn!(error = %e, "Could not release replay claims.");
        }
        result
    }

    async fn replay_claimed(
        &self,
        letters: Vec<DeadLetter>,
    ) -> Result<Vec<Replayed>, trainhub_store::Error> {
        // Grouped by connector, each run with the system its connector speaks for now (the
        // fix may have been to the configuration), or as received if it is gone.
        let mut groups: BTreeMap<(String, String), Vec<DeadLetter>> = BTreeMap::new();
        for letter in letters {
            let scope = self
                .scope_of(&letter.connector)
                .unwrap_or(&letter.scope)
                .to_owned();
            groups
                .entry((letter.connector.clone(), scope))
                .or_default()
                .push(letter);
        }
        let mut out = Vec::new();
        for ((connector, scope), letters) in groups {
            for chunk in letters.chunks(BATCH) {
                let mut inbound = Vec::with_capacity(chunk.len());
                // Which records each letter's bytes decoded to.
                let mut spans = Vec::with_capacity(chunk.len());
                for letter in chunk {
                    let start = inbound.len();
                    inbound.extend(self.decode_letter(letter, &scope).into_iter().map(|mut i| {
                        i.replay_of = Some(letter.id);
                        i
                    }));
                    spans.push(start..inbound.len());
                }
                let batch = self.prepare_inbound(&scope, inbound);
                let outcomes = self.commit(&connector, batch).await?;
                out.extend(chunk.iter().zip(spans).map(|(l, span)| Replayed {
                    id: l.id,
                    outcome: letter_outcome(&outcomes[span]),
                }));
            }
        }
        tracing::info!(replayed = out.len(), "Dead letters replayed.");
        Ok(out)
    }

    /// The records a letter's bytes decode to now: canonical formats as they are, partners'
    /// formats with the mapping profile's current version (through the binary's decoder).
    fn decode_letter(&self, l: &DeadLetter, scope: &str) -> Vec<Inbound> {
        if let Some(format) = Format::parse(&l.format) {
            return vec![Inbound::decode(
                l.payload.clone(),
                format,
                l.headers.clone(),
            )];
        }
        let letter = Letter {
            format: &l.format,
            system: if scope.is_empty() { &l.system } else { scope },
            payload: &l.payload,
            headers: &l.headers,
            received_at: &l.received_at,
        };
        let decoded = self
            .decoder()
            .and_then(|d| d.letter(letter, self.keyer()))
            .filter(|items| !items.is_empty());
        decoded.unwrap_or_else(|| {
            vec![Inbound {
                record: Err(Rejection {
                    stage: Stage::Decode,
                    code: ReasonCode::MalformedPayload,
                    field: String::new(),
                    message: format!("no reader for the letter's format `{}`", l.format),
                }),
                payload: l.payload.clone(),
                format: Format::Protobuf,
                headers: l.headers.clone(),
                replay_of: None,
                native: None,
            }]
        })
    }
}

/// A letter's outcome over the records its bytes made: the first refusal if any was refused,
/// else the most telling (accepted or parked before superseded before duplicate).
fn letter_outcome(outcomes: &[Outcome]) -> Outcome {
    let mut best = &outcomes[0];
    for o in outcomes {
        if o.status.weight() > best.status.weight() {
            best = o;
        }
    }
    best.clone()
}
