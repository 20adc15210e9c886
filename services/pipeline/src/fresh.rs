//! Reading every person as the records say now, without writing: pages of the projected state
//! where it is current, merged in key order with the persons whose state is stale or missing
//! (marked for the projector), whose dossiers are computed from their source records. Reads
//! never run the projector; a backlog makes them slower, never stale.

use crate::QueryError;
use std::collections::BTreeSet;
use std::ops::Bound;
use trainhub_model::dossier::StoredRecord;
use trainhub_model::PersonKey;
use trainhub_store::projection::StateFilter;
use trainhub_store::Store;

/// Pages of persons and their current records, in person-key order.
#[derive(Debug)]
pub struct FreshPages {
    store: Store,
    state: StateFilter,
    stale: BTreeSet<String>,
    after: String,
    done: bool,
}

/// One person and its current records.
pub type Facts = (PersonKey, Vec<StoredRecord>);

impl FreshPages {
    /// Pages of the persons `state` selects after person key `after`, the persons of `stale`
    /// read from their source records (the caller filters them on their computed dossier);
    /// with `stale` empty, every person as last projected.
    pub fn with_stale(
        store: &Store,
        state: StateFilter,
        after: &str,
        stale: BTreeSet<String>,
    ) -> Self {
        FreshPages {
            stale,
            store: store.clone(),
            state,
            after: after.to_owned(),
            done: false,
        }
    }

    /// Whether every projected state is current (no person waits for the projector).
    pub fn all_current(&self) -> bool {
        self.stale.is_empty()
    }

    /// The next page of at most about `limit` persons; `None` when all were read.
    pub async fn next(&mut self, limit: usize) -> Result<Option<Vec<Facts>>, QueryError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .state_page(&self.state, &self.after, limit as i64)
            .await?;
        let stale: Vec<String> = self
            .stale
            .range::<str, _>((Bound::Excluded(self.after.as_str()), Bound::Unbounded))
            .take(limit)
            .cloned()
            .collect();
        // Only keys up to the smaller end of a full list are complete in both lists.
        let mut bound: Option<String> = None;
        if page.len() == limit {
            bound = page.last().map(|(k, _)| k.as_str().to_owned());
        }
        if stale.len() == limit {
            let end = stale.last().cloned();
            bound = match (bound, end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let within = |k: &str| bound.as_deref().is_none_or(|b| k <= b);
        let wanted: Vec<String> = stale.into_iter().filter(|k| within(k)).collect();
        let fresh = if wanted.is_empty() {
            Vec::new()
        } else {
            self.store.records_of_persons(&wanted).await?
        };
        let mut out: Vec<Facts> = page
            .into_iter()
            .filter(|(k, _)| within(k.as_str()) && !self.stale.contains(k.as_str()))
            .chain(fresh)
            .collect();
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        self.done = bound.is_none();
        match (&bound, out.last()) {
            (Some(b), _) => self.after = b.clone(),
            (None, Some((k, _))) => self.after = k.as_str().to_owned(),
            (None, None) => {}
        }
        Ok(Some(out))
    }
}
