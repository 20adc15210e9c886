//! Dead-letter replay: the kept bytes run through the pipeline again, as the connector that
//! received them runs now (same connector name, its current system scope). A letter whose
//! record is now stored is marked replayed in the same transaction; one still refused stays
//! dead with its new reason. Nothing is deleted.

use crate::pipeline::{Inbound, Outcome, Pipeline};
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
                let inbound = chunk.iter().map(|l| {
                    let mut item = match Format::parse(&l.format) {
                        Some(format) => {
                            Inbound::decode(l.payload.clone(), format, l.headers.clone())
                        }
                        None => Inbound {
                            record: Err(Rejection {
                                stage: Stage::Decode,
                                code: ReasonCode::MalformedPayload,
                                field: String::new(),
                                message: format!("unknown payload format `{}`", l.format),
                            }),
                            payload: l.payload.clone(),
                            format: Format::Protobuf,
                            headers: l.headers.clone(),
                            replay_of: None,
                            native: None,
                        },
                    };
                    item.replay_of = Some(l.id);
                    item
                });
                let batch = self.prepare_inbound(&scope, inbound);
                let outcomes = self.commit(&connector, batch).await?;
                out.extend(
                    chunk
                        .iter()
                        .zip(outcomes)
                        .map(|(l, outcome)| Replayed { id: l.id, outcome }),
                );
            }
        }
        tracing::info!(replayed = out.len(), "Dead letters replayed.");
        Ok(out)
    }
}
