//! The ingest pipeline every path shares (DESIGN §1): decode → validate → resolve → commit.
//! Outcomes are returned only after the batch's transaction has committed.

use crate::convert;
use crate::native::{Native, NativeDecoder};
use prost::Message;
use std::sync::Arc;
use trainhub_model::merge::OutcomeStatus;
use trainhub_model::policy::Policy;
use trainhub_model::{PersonKeyer, ReasonCode, Rejection, Stage};
use trainhub_proto::v1 as pb;
use trainhub_proto::Format;
use trainhub_store::xapi::NewStatement;
use trainhub_store::{DeadLetterInput, PreparedRecord, Store};

/// What the pipeline needs: the store, the person keyer and the rules.
#[derive(Clone, Debug)]
pub struct Pipeline {
    store: Store,
    keyer: PersonKeyer,
    policy: Arc<Policy>,
    /// When a batch last committed, for the projector to step aside during bursts.
    last_commit: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// The system each configured connector speaks for, as configured now: replay scopes a
    /// letter by its connector's current setting (the fix may be in the configuration).
    scopes: Arc<std::collections::HashMap<String, String>>,
    observer: Option<Arc<dyn CommitObserver>>,
    /// Partners' formats (`SubmitNative`, replay of their dead letters).
    decoder: Option<Arc<dyn NativeDecoder>>,
    /// The authority of a person record that names none, by its unit.
    units: Arc<trainhub_model::authority::UnitAuthorities>,
}

/// Told of every committed batch: for metrics and connector status.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// `outcomes` of a batch received by `connector` committed in `latency`.
    fn committed(&self, connector: &str, outcomes: &[Outcome], latency: std::time::Duration);
}

/// One record's outcome, ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Source system as sent (empty when unreadable).
    pub system: String,
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
            last_commit: Arc::default(),
            scopes: Arc::default(),
            observer: None,
            decoder: None,
            units: Arc::default(),
        }
    }

    /// This pipeline, giving a person record without an authority the one its unit maps to.
    pub fn with_unit_authorities(
        mut self,
        units: trainhub_model::authority::UnitAuthorities,
    ) -> Self {
        self.units = Arc::new(units);
        self
    }

    /// A person record without an authority gets its unit's, if one is mapped.
    fn derive_authority(
        &self,
        mut record: trainhub_model::record::CanonicalRecord,
    ) -> trainhub_model::record::CanonicalRecord {
        if let Some(trainhub_model::record::Body::Person(p)) = &mut record.body {
            if p.authority.is_none() {
                let unit = p.unit_code.as_deref().unwrap_or("");
                p.authority = self.units.of(unit).map(str::to_owned);
            }
        }
        record
    }

    /// This pipeline, reading partners' own formats with `decoder`.
    pub fn with_decoder(mut self, decoder: Arc<dyn NativeDecoder>) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// The reader of partners' formats, if the binary gave one.
    pub fn decoder(&self) -> Option<&dyn NativeDecoder> {
        self.decoder.as_deref()
    }

    /// This pipeline, telling `observer` of every commit.
    pub fn with_observer(mut self, observer: Arc<dyn CommitObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// This pipeline, knowing which system each connector speaks for.
    pub fn with_scopes(mut self, scopes: std::collections::HashMap<String, String>) -> Self {
        self.scopes = Arc::new(scopes);
        self
    }

    /// The system connector `name` speaks for now, if it is configured.
    pub fn scope_of(&self, name: &str) -> Option<&str> {
        self.scopes.get(name).map(String::as_str)
    }

    /// Up to `limit` `dossier.changed` events to publish, held for this relay until it
    /// completes the claim with what the broker confirmed.
    pub async fn claim_events(
        &self,
        limit: i64,
    ) -> Result<trainhub_store::outbox::OutboxClaim, trainhub_store::Error> {
        self.store.outbox_claim(limit).await
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

    /// How long ago a batch last committed through this pipeline.
    pub fn since_last_commit(&self) -> Option<std::time::Duration> {
        let last = *self.last_commit.lock().expect("not poisoned");
        last.map(|t| t.elapsed())
    }

    /// Validates and commits `records` received by `connector`; one outcome per record, in
    /// order. Rejected records are dead-lettered in the same transaction.
    #[tracing::instrument(skip_all, fields(connector = connector, records = records.len()))]
    pub async fn submit(
        &self,
        connector: &str,
        records: &[pb::Record],
    ) -> Result<Vec<Outcome>, trainhub_store::Error> {
        let batch = self.prepare(records);
        self.commit(connector, batch).await
    }

    /// The CPU half of [`Pipeline::submit`]: decode, validate and prepare the rows. Streams run
    /// it for the next batch while the previous one commits.
    pub fn prepare(&self, records: &[pb::Record]) -> PreparedBatch {
        self.prepare_as("", records)
    }

    /// [`Pipeline::prepare`] for a caller that speaks for system `scope` only (none when
    /// empty): records of any other system are refused with `SYSTEM_MISMATCH`.
    pub fn prepare_as(&self, scope: &str, records: &[pb::Record]) -> PreparedBatch {
        let inbound = records.iter().map(|r| Inbound {
            payload: r.encode_to_vec(),
            record: Ok(r.clone()),
            format: Format::Protobuf,
            headers: String::new(),
            replay_of: None,
            native: None,
        });
        self.prepare_inbound(scope, inbound)
    }

    /// Prepares records as they arrived from a transport: decoded or not, with their bytes.
    /// When `scope` is not empty, records of any other `source.system` are refused
    /// (`SYSTEM_MISMATCH`): a connector only speaks for its own system.
    pub fn prepare_inbound(
        &self,
        scope: &str,
        inbound: impl IntoIterator<Item = Inbound>,
    ) -> PreparedBatch {
        let _span = tracing::info_span!("validate").entered();
        let mut batch = PreparedBatch::default();
        for item in inbound {
            self.push(&mut batch, scope, item, None);
        }
        batch
    }

    /// Prepares records the store refused for good: each goes to the dead letters with
    /// `refusal`, keeping its source identity and bytes (a record already refused keeps its
    /// own reason).
    pub fn prepare_refused(
        &self,
        scope: &str,
        inbound: impl IntoIterator<Item = Inbound>,
        refusal: &Rejection,
    ) -> PreparedBatch {
        let mut batch = PreparedBatch::default();
        for item in inbound {
            self.push(&mut batch, scope, item, Some(refusal));
        }
        batch
    }

    fn push(
        &self,
        batch: &mut PreparedBatch,
        scope: &str,
        item: Inbound,
        refusal: Option<&Rejection>,
    ) {
        let source = match &item.record {
            Ok(r) => r.source.clone().unwrap_or_default(),
            Err(_) => pb::SourceRef::default(),
        };
        let checked = item.record.and_then(|record| {
            if let Some(refusal) = refusal {
                return Err(refusal.clone());
            }
            if !scope.is_empty() && source.system != scope {
                return Err(Rejection {
                    stage: Stage::Identity,
                    code: ReasonCode::SystemMismatch,
                    field: "source.system".into(),
                    message: format!(
                        "the sender (connector or partner) speaks for system `{scope}`, not `{}`",
                        source.system
                    ),
                });
            }
            convert::canonical(&record, &self.keyer)
                .map(|c| self.derive_authority(c))
                .map_err(|r| match &item.native {
                    Some(native) => native.name_source(r),
                    None => r,
                })
        });
        let profile = item.native.as_ref().map_or("", |n| n.profile.as_str());
        match checked {
            Ok(canonical) => {
                batch.slots.push(Slot::Stored(batch.prepared.len()));
                let mut prepared = PreparedRecord::new(&canonical, item.payload, profile);
                prepared.replay_of = item.replay_of;
                batch.prepared.push(prepared);
            }
            Err(rejection) => {
                batch.slots.push(Slot::Rejected(batch.rejects.len()));
                let format = match &item.native {
                    Some(n) => n.tag(),
                    None => item.format.as_str().to_owned(),
                };
                let fingerprint = self
                    .keyer
                    .fingerprint(
                        "dead-letter",
                        &[scope.as_bytes(), format.as_bytes(), &item.payload],
                    )
                    .to_vec();
                batch.rejects.push(DeadLetterInput {
                    rejection,
                    system: source.system.clone(),
                    kind: source.kind.clone(),
                    record_id: source.record_id.clone(),
                    payload: item.payload,
                    format,
                    fingerprint,
                    headers: item.headers,
                    scope: scope.to_owned(),
                    replay_of: item.replay_of,
                });
            }
        }
        batch
            .ids
            .push((source.system, source.record_id, source.kind));
    }

    /// The I/O half of [`Pipeline::submit`]: one transaction, then the outcomes.
    pub async fn commit(
        &self,
        connector: &str,
        batch: PreparedBatch,
    ) -> Result<Vec<Outcome>, trainhub_store::Error> {
        self.commit_after(connector, batch, None::<std::future::Ready<()>>)
            .await
    }

    /// [`Pipeline::commit`] of a batch that may commit alongside earlier batches of the same
    /// sender. Once its transaction has committed it waits for `earlier` (those batches'
    /// commits) and answers as if it had committed after them: a record `PARKED` only because
    /// its person or its account's link was in an earlier batch still committing is
    /// `ACCEPTED`. Without `earlier`, the answer is as of its own commit.
    #[tracing::instrument(name = "commit", skip_all, fields(connector = connector, records = batch.len()))]
    pub async fn commit_after(
        &self,
        connector: &str,
        batch: PreparedBatch,
        earlier: Option<impl std::future::Future<Output = ()>>,
    ) -> Result<Vec<Outcome>, trainhub_store::Error> {
        let started = std::time::Instant::now();
        let mut committed = self.commit_retrying(connector, &batch).await?;
        *self.last_commit.lock().expect("not poisoned") = Some(std::time::Instant::now());
        if !batch.rejects.is_empty() {
            tracing::info!(
                rejected = batch.rejects.len(),
                "Records rejected and dead-lettered."
            );
        }
        let latency = started.elapsed();
        if let Some(earlier) = earlier {
            earlier.await;
            self.settle_parked(&batch, &mut committed.statuses).await;
        }
        let outcomes: Vec<Outcome> = batch
            .ids
            .into_iter()
            .zip(batch.slots)
            .map(|((system, record_id, kind), slot)| {
                let (status, rejection) = match slot {
                    Slot::Stored(i) => (committed.statuses[i], None),
                    Slot::Rejected(i) => (
                        OutcomeStatus::Rejected,
                        Some(batch.rejects[i].rejection.clone()),
                    ),
                };
                Outcome {
                    system,
                    record_id,
                    kind,
                    status,
                    rejection,
                }
            })
            .collect();
        if let Some(observer) = &self.observer {
            observer.committed(connector, &outcomes, latency);
        }
        Ok(outcomes)
    }
}

impl Pipeline {
    /// One transaction; a deadlock or serialization failure rolls the whole transaction back,
    /// so the batch is simply tried again; other errors, or too many tries, go back to the
    /// caller.
    async fn commit_retrying(
        &self,
        connector: &str,
        batch: &PreparedBatch,
    ) -> Result<trainhub_store::CommittedBatch, trainhub_store::Error> {
        let mut attempt = 0;
        loop {
            match self
                .store
                .commit_batch_with(
                    connector,
                    &batch.prepared,
                    &batch.rejects,
                    &batch.statements,
                )
                .await
            {
                Err(e) if e.is_retryable_conflict() && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "Batch conflicted; retrying.");
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Turns the `PARKED` statuses of `batch` whose records are resolved now into `ACCEPTED`.
    /// The batch has committed: if the store cannot say, they stay `PARKED` (they join once
    /// the projector finds their person either way).
    async fn settle_parked(&self, batch: &PreparedBatch, statuses: &mut [OutcomeStatus]) {
        let parked: Vec<usize> = (0..statuses.len())
            .filter(|&i| statuses[i] == OutcomeStatus::Parked)
            .collect();
        if parked.is_empty() {
            return;
        }
        match self.store.resolved_now(&batch.prepared, &parked).await {
            Ok(resolved) => {
                for i in resolved {
                    statuses[i] = OutcomeStatus::Accepted;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not settle parked outcomes; they stay PARKED.")
            }
        }
    }
}

/// One record as a transport received it.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The decoded record, or why the bytes are not one (stage `decode`).
    pub record: Result<pb::Record, Rejection>,
    /// The bytes as received: kept in the raw log, or in the dead letter.
    pub payload: Vec<u8>,
    /// How `payload` encodes the record.
    pub format: Format,
    /// Transport headers as a JSON object, or empty.
    pub headers: String,
    /// The dead letter this is a replay of.
    pub replay_of: Option<i64>,
    /// Set when a mapping profile made the record from a partner's own format.
    pub native: Option<Native>,
}

impl Inbound {
    /// Decodes `payload` as `format`; a failure is a `decode` stage `MALFORMED_PAYLOAD`.
    pub fn decode(payload: Vec<u8>, format: Format, headers: String) -> Inbound {
        let record = format.decode(&payload).map_err(|message| Rejection {
            stage: Stage::Decode,
            code: ReasonCode::MalformedPayload,
            field: String::new(),
            message,
        });
        Inbound {
            record,
            payload,
            format,
            headers,
            replay_of: None,
            native: None,
        }
    }
}

/// Where an input record went: to the store or to the dead letters.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Stored(usize),
    Rejected(usize),
}

/// A batch decoded and validated, ready to commit.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    prepared: Vec<PreparedRecord>,
    rejects: Vec<DeadLetterInput>,
    slots: Vec<Slot>,
    ids: Vec<(String, String, String)>,
    /// xAPI statements to keep in the same transaction as the records they made.
    statements: Vec<NewStatement>,
}

impl PreparedBatch {
    /// The refusals among the batch's records, in order.
    pub fn refusals(&self) -> impl Iterator<Item = &Rejection> {
        self.rejects.iter().map(|r| &r.rejection)
    }

    /// Keeps `statements` in the batch's transaction: each is stored exactly when the records
    /// it made are, so a failed commit leaves neither and a retry lands both.
    pub fn keep_statements(&mut self, statements: Vec<NewStatement>) {
        self.statements.extend(statements);
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
