//! A large generated load without holding it in memory: the people's records are generated
//! and shuffled a chunk of people at a time, written to a file of `SubmitRequest` batches
//! before the clock starts, and read back batch by batch while the hub ingests them.

use anyhow::{Context, Result};
use prost::Message;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use trainhub_connectors::synthetic::{self, People, SynthPerson};
use trainhub_proto::v1 as pb;

/// People whose records are shuffled together. Up to this many people the load is one chunk,
/// so every record of the population is shuffled with every other.
const CHUNK: usize = 20_000;
/// People kept for the reads: all of them up to this many, else every k-th.
const SAMPLE: usize = 20_000;

/// What [`write`] wrote.
pub struct Load {
    /// Records in the file.
    pub records: usize,
    /// A sample of the people (all of them up to 20,000), the first among them.
    pub sample: Vec<SynthPerson>,
}

/// Writes `people` people (seed 7) with `n` records each to `path`: the classes, then each
/// person's first `n` own records topped up with online study by national ID to `n`,
/// shuffled per chunk of 20,000 people, in batches of `batch`.
pub fn write(path: &Path, people: usize, n: usize, batch: usize) -> Result<Load> {
    let mut generator = People::new(7, people);
    let mut out = BufWriter::new(std::fs::File::create(path).context("the load file")?);
    let stride = stride(people);
    let mut load = Load {
        records: 0,
        sample: Vec::new(),
    };
    let mut chunk = generator.classes();
    let (mut pad, mut in_chunk, mut index) = (0, 0, 0);
    for (person, own) in generator {
        chunk.extend(own.iter().take(n).cloned());
        for _ in own.len()..n {
            chunk.push(learning(&person, pad));
            pad += 1;
        }
        if index % stride == 0 {
            load.sample.push(person);
        }
        (index, in_chunk) = (index + 1, in_chunk + 1);
        if in_chunk == CHUNK {
            load.records += flush(&mut out, &mut chunk, batch, index as u64)?;
            in_chunk = 0;
        }
    }
    load.records += flush(&mut out, &mut chunk, batch, index as u64)?;
    out.flush()?;
    Ok(load)
}

/// Every how many people one is sampled for the reads.
fn stride(people: usize) -> usize {
    people.div_ceil(SAMPLE).max(1)
}

/// The sample [`write`] keeps for `people` people, generated again without writing a load
/// (for reads on a database loaded earlier).
pub fn sample(people: usize) -> Vec<SynthPerson> {
    let stride = stride(people);
    People::new(7, people)
        .step_by(stride)
        .map(|(person, _)| person)
        .collect()
}

/// Shuffles the chunk and writes it as length-prefixed batches; the records written.
fn flush(
    out: &mut impl Write,
    chunk: &mut Vec<pb::Record>,
    batch: usize,
    seed: u64,
) -> Result<usize> {
    synthetic::shuffle(chunk, 7 ^ seed);
    let written = chunk.len();
    for records in chunk.chunks(batch) {
        let bytes = pb::SubmitRequest {
            records: records.to_vec(),
        }
        .encode_to_vec();
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&bytes)?;
    }
    chunk.clear();
    Ok(written)
}

/// The batches of a load file, read on a thread of their own into a bounded channel.
pub fn read(path: &Path) -> Result<tokio_stream::wrappers::ReceiverStream<pb::SubmitRequest>> {
    let mut input = BufReader::new(std::fs::File::open(path).context("the load file")?);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        let mut len = [0u8; 4];
        while input.read_exact(&mut len).is_ok() {
            let mut bytes = vec![0; u32::from_le_bytes(len) as usize];
            let request = input
                .read_exact(&mut bytes)
                .ok()
                .and_then(|_| pb::SubmitRequest::decode(bytes.as_slice()).ok());
            // A short or damaged file ends the stream early; the caller counts the records.
            let sent = request.is_some_and(|r| tx.blocking_send(r).is_ok());
            if !sent {
                break;
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn learning(p: &SynthPerson, n: usize) -> pb::Record {
    pb::Record {
        source: Some(pb::SourceRef {
            system: synthetic::ELEARNING.into(),
            kind: "learning".into(),
            record_id: format!("PAD-{n}"),
            version: 1,
        }),
        deleted: false,
        body: Some(pb::record::Body::Learning(pb::Learning {
            person_ref: Some(pb::PersonRef {
                national_id: p.national_id.clone(),
                ..Default::default()
            }),
            course_id: format!("PAD-{}", n % 300),
            course_title: "专题网课".into(),
            themes: vec!["knowledge".into()],
            minutes: 90.0,
            hours: 0.0,
            completed_at: format!("2025-0{}-15T20:00:00+08:00", 1 + n % 9),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn the_load_file_gives_each_person_their_records_once() {
        let dir = std::env::temp_dir().join(format!("trainhub-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("load.bin");
        let load = write(&file, 240, 6, 100).unwrap();
        let classes = People::new(7, 240).classes().len();
        assert_eq!(load.records, classes + 240 * 6);
        assert_eq!(load.sample.len(), 240);
        let mut batches = read(&file).unwrap();
        let (mut seen, mut ids) = (0, std::collections::BTreeSet::new());
        while let Some(batch) = batches.next().await {
            assert!(batch.records.len() <= 100);
            seen += batch.records.len();
            for r in batch.records {
                let s = r.source.unwrap();
                assert!(
                    ids.insert((s.system, s.kind, s.record_id)),
                    "a record twice"
                );
            }
        }
        assert_eq!(seen, load.records);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
