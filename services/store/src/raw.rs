//! The raw log: the bytes of every received record as received, kept sealed for audit and
//! replay. Since migration 0018 a committed batch is one row of `raw_batches`: its records'
//! source identities, versions and bytes, framed one after another, compressed, then sealed.
//! Rows of `raw_log` written before that stay as they are and are read beside the batches.

use crate::seal::column;
use crate::sql::tuples;
use crate::{Error, PreparedRecord, Result, Store};
use sqlx::{Any, Row, Transaction};
use std::collections::HashSet;

/// The framing's version, the first byte of a batch's plain bytes.
const FORMAT: u8 = 1;
/// Old log rows read per query.
const ROWS_PER_PAGE: i64 = 1000;
/// Batches read (and opened together) per query.
const BATCHES_PER_PAGE: i64 = 16;

/// One record of the raw log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// When the hub committed it (RFC 3339, UTC).
    pub received_at: String,
    /// The connector that received it.
    pub connector: String,
    /// Source system.
    pub system: String,
    /// Record kind as stored (`person`, `enrollment`, …).
    pub kind: String,
    /// The source's record id.
    pub record_id: String,
    /// The source's version.
    pub version: i64,
    /// The bytes as received.
    pub bytes: Vec<u8>,
}

/// The plain bytes of a batch: [`FORMAT`], then per record its system, kind, record id and
/// bytes, each length-prefixed (u32, little endian), and its version (i64, little endian).
pub(crate) fn frame(records: &[PreparedRecord]) -> Vec<u8> {
    let size: usize = records
        .iter()
        .map(|r| 24 + r.source.system.len() + r.source.record_id.len() + r.raw.len())
        .sum();
    let mut out = Vec::with_capacity(1 + size);
    out.push(FORMAT);
    for r in records {
        for field in [
            r.source.system.as_bytes(),
            r.source.kind.as_str().as_bytes(),
            r.source.record_id.as_bytes(),
            &r.raw,
        ] {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&r.source.version.to_le_bytes());
    }
    out
}

/// Reads a batch's plain bytes field by field.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(len as usize)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.field()?.to_vec()).ok()
    }
}

/// The records of a batch's plain bytes, with the batch's time and connector; `None` when the
/// bytes are not a whole batch of a known format.
fn unframe(plain: &[u8], received_at: &str, connector: &str) -> Option<Vec<RawRecord>> {
    let (&format, rest) = plain.split_first()?;
    if format != FORMAT {
        return None;
    }
    let mut fields = Fields(rest);
    let mut out = Vec::new();
    while !fields.0.is_empty() {
        out.push(RawRecord {
            received_at: received_at.to_owned(),
            connector: connector.to_owned(),
            system: fields.text()?,
            kind: fields.text()?,
            record_id: fields.text()?,
            bytes: fields.field()?.to_vec(),
            version: i64::from_le_bytes(fields.take(8)?.try_into().ok()?),
        });
    }
    Some(out)
}

/// Writes one batch's records to the raw log: one row, `packed` sealed beforehand by
/// [`Store::seal_raw`]. Nothing for an empty batch.
pub(crate) async fn insert_batch(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    connector: &str,
    now: &str,
    records: usize,
    packed: Option<&[u8]>,
) -> Result<()> {
    let Some(packed) = packed else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO raw_batches (received_at, connector, records, packed) VALUES {}",
        tuples(store.backend, 1, 1, 4)
    );
    sqlx::query(&sql)
        .bind(now)
        .bind(connector)
        .bind(records as i64)
        .bind(packed)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// A batch's raw log value: framed, compressed, then sealed; `None` for no records. CPU
    /// work, done before the write lock is taken.
    pub(crate) fn seal_raw(&self, records: &[PreparedRecord]) -> Option<Vec<u8>> {
        (!records.is_empty()).then(|| self.keys.seal_packed(column::RAW_BATCH, &frame(records)))
    }

    /// Records received in the raw log: the rows written before migration 0018 and the
    /// records of the batches since.
    pub async fn received_count(&self) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT CAST((SELECT COUNT(*) FROM raw_log) + \
             (SELECT COALESCE(SUM(records), 0) FROM raw_batches) AS BIGINT) AS n",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Distinct records of `system` (and `kind`, unless empty) received in `[start, end)`;
    /// both bounds are RFC 3339 UTC instants as the store writes them. Reads the window's
    /// batches page by page.
    pub async fn received_between(
        &self,
        system: &str,
        kind: &str,
        start: &str,
        end: &str,
    ) -> Result<i64> {
        let mut seen = HashSet::new();
        self.received_each(start, end, |r| {
            if r.system == system && (kind.is_empty() || r.kind == kind) {
                seen.insert((r.kind, r.record_id));
            }
        })
        .await?;
        Ok(seen.len() as i64)
    }

    /// Calls `each` with every record of the raw log received in `[start, end)`, old rows
    /// first, then the batches in the order they were committed; a page at a time, never the
    /// whole log in memory.
    pub async fn received_each(
        &self,
        start: &str,
        end: &str,
        mut each: impl FnMut(RawRecord) + Send,
    ) -> Result<()> {
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, received_at, connector, system, kind, record_id, version, bytes \
                 FROM raw_log WHERE received_at >= $1 AND received_at < $2 AND id > $3 \
                 ORDER BY id LIMIT $4",
            )
            .bind(start)
            .bind(end)
            .bind(after)
            .bind(ROWS_PER_PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            for row in rows {
                let sealed: Vec<u8> = row.try_get("bytes")?;
                let bytes = self
                    .keys
                    .open(column::RAW, &sealed)
                    .map_err(|e| Error::Sealed(format!("{} of row {after}", column::RAW), e))?;
                each(RawRecord {
                    received_at: row.try_get("received_at")?,
                    connector: row.try_get("connector")?,
                    system: row.try_get("system")?,
                    kind: row.try_get("kind")?,
                    record_id: row.try_get("record_id")?,
                    version: row.try_get("version")?,
                    bytes,
                });
            }
        }
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, received_at, connector, packed FROM raw_batches \
                 WHERE received_at >= $1 AND received_at < $2 AND id > $3 ORDER BY id LIMIT $4",
            )
            .bind(start)
            .bind(end)
            .bind(after)
            .bind(BATCHES_PER_PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            let mut page = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get("id")?;
                page.push((
                    id,
                    row.try_get::<String, _>("received_at")?,
                    row.try_get::<String, _>("connector")?,
                    row.try_get::<Vec<u8>, _>("packed")?,
                ));
            }
            for record in self.open_batches(page).await? {
                each(record);
            }
        }
        Ok(())
    }

    /// The records of a page of batches (id, time, connector, packed), opened on a blocking
    /// thread: a batch is a few hundred KiB to inflate.
    async fn open_batches(
        &self,
        page: Vec<(i64, String, String, Vec<u8>)>,
    ) -> Result<Vec<RawRecord>> {
        let keys = self.keys.clone();
        crate::joined(tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (id, received_at, connector, packed) in page {
                let label = || format!("{} of batch {id}", column::RAW_BATCH);
                let plain = keys
                    .open_packed(column::RAW_BATCH, &packed)
                    .map_err(|e| Error::Sealed(label(), e))?;
                let records = unframe(&plain, &received_at, &connector).ok_or_else(|| {
                    Error::Corrupt(label(), "not a whole batch of a known format".into())
                })?;
                out.extend(records);
            }
            Ok(out)
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainhub_model::record::{CanonicalRecord, Kind, SourceRef};

    fn record(system: &str, kind: Kind, id: &str, version: i64, raw: &[u8]) -> PreparedRecord {
        let canonical = CanonicalRecord {
            source: SourceRef {
                system: system.into(),
                kind,
                record_id: id.into(),
                version,
            },
            deleted: true,
            body: None,
        };
        PreparedRecord::new(&canonical, raw.to_vec(), "")
    }

    #[test]
    fn a_framed_batch_gives_back_each_record_and_refuses_damage() {
        let records = [
            record("hr", Kind::Person, "p-1", 3, b"{\"name\":\"x\"}"),
            record("lms", Kind::Learning, "", -1, b""),
            record("学校", Kind::Result, "r/9", i64::MAX, &[0, 255, 7]),
        ];
        let plain = frame(&records);
        let got = unframe(&plain, "2026-11-30T00:00:00Z", "grpc").expect("a whole batch");
        assert_eq!(got.len(), 3);
        for (r, g) in records.iter().zip(&got) {
            assert_eq!(g.system, r.source.system);
            assert_eq!(g.kind, r.source.kind.as_str());
            assert_eq!(g.record_id, r.source.record_id);
            assert_eq!(g.version, r.source.version);
            assert_eq!(g.bytes, r.raw);
            assert_eq!(
                (g.received_at.as_str(), g.connector.as_str()),
                ("2026-11-30T00:00:00Z", "grpc")
            );
        }
        assert_eq!(unframe(&frame(&[]), "", ""), Some(Vec::new()));
        for cut in [plain.len() - 1, plain.len() - 9, 3] {
            assert_eq!(unframe(&plain[..cut], "", ""), None, "cut at {cut}");
        }
        let mut other = plain.clone();
        other[0] = FORMAT + 1;
        assert_eq!(unframe(&other, "", ""), None, "an unknown format");
        assert_eq!(unframe(&[], "", ""), None, "no format byte");
    }
}
