//! Scale-out (issue 8, DESIGN §1, §8): three hub processes on one PostgreSQL database and one
//! RabbitMQ. 100,000 records — in random order, 10 % of them repeats, some older versions
//! arriving after newer ones — come in over gRPC spread across the three and over AMQP, where
//! the three consume the same queues. One hub is SIGKILLed mid-way and started again.
//!
//! Then: every valid record is stored; the dossiers the cluster serves equal, byte for byte,
//! those of a single hub fed the same records in order (arrival times aside — when a version
//! arrived is not the same instant in two runs); and the outbox announced every change of
//! every dossier, each once — a repeat is only allowed for events the killed hub had sent but
//! not yet seen confirmed when it died (delivery is at least once; consumers drop a repeated
//! `message_id`).
//!
//! A binary of its own: it loads the machine, so no other test runs beside it.

use prost::Message as _;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::process::{Child, Command};
use trainhub_connectors::synthetic;
use trainhub_proto::v1 as pb;
use trainhub_store::read::Table;
use trainhub_store::Store;
use trainhub_tests::broker::{random_name, wait_for, Broker, Feed};
use trainhub_tests::{count, key, stored_keys, Backend, TestHub, TestStore};

const TOTAL: usize = 100_000;
const HUBS: usize = 3;
/// The hub that is killed.
const VICTIM: usize = 1;
/// Events per confirm round: at most this many can be repeated by a kill.
const EVENT_BATCH: u16 = 100;

/// The records in order (each key's versions ascending) and the 100,000 arrivals.
fn record_sets(seed: u64) -> (Vec<pb::Record>, Vec<pb::Record>) {
    let mut in_order = Vec::new();
    let population = synthetic::population(seed, 7_500).records;
    for (i, r) in population.iter().enumerate() {
        if in_order.len() >= TOTAL * 9 / 10 {
            break;
        }
        // Every twentieth record also in an older version with other content.
        if i % 20 == 0 {
            let mut older = r.clone();
            older.source.as_mut().expect("source").version -= 1;
            if let Some(pb::record::Body::Person(p)) = &mut older.body {
                p.name.push('旧');
            }
            in_order.push(older);
        }
        in_order.push(r.clone());
    }
    in_order.truncate(TOTAL * 9 / 10);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut arrivals = in_order.clone();
    while arrivals.len() < TOTAL {
        arrivals.push(in_order[rng.gen_range(0..in_order.len())].clone());
    }
    arrivals.shuffle(&mut rng);
    (in_order, arrivals)
}

/// A hub process and where it listens.
struct Hub {
    child: Child,
    grpc: String,
}

fn config_file(dir: &Path, index: usize, store_url: &str, exchange: &str, feed: &Feed) -> PathBuf {
    let path = dir.join(format!("hub-{index}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             data_dir = {:?}\ninstance = \"hub-{index}\"\n\n[store]\nurl = {:?}\n\n\
             [events]\nurl = {:?}\nexchange = {:?}\nbatch = {EVENT_BATCH}\n\n{}",
            dir.display().to_string(),
            store_url,
            trainhub_tests::broker::amqp_url(),
            exchange,
            feed.toml()
        ),
    )
    .expect("config written");
    path
}

async fn start_hub(dir: &Path, index: usize) -> Hub {
    let out = dir.join(format!("hub-{index}.out"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("hub-{index}.log")))
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .arg("serve")
        .arg("--config")
        .arg(dir.join(format!("hub-{index}.toml")))
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the hub starts");
    // The hub prints its addresses once it listens.
    let mut grpc = None;
    for _ in 0..600 {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        grpc = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("gRPC").map(|a| a.trim().to_owned()));
        if grpc.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grpc = grpc.unwrap_or_else(|| {
        panic!(
            "hub {index} did not start: {}",
            std::fs::read_to_string(dir.join(format!("hub-{index}.log"))).unwrap_or_default()
        )
    });
    Hub {
        child,
        grpc: format!("http://{grpc}"),
    }
}

/// The live hubs' gRPC addresses (`None` while one is down).
type Live = Arc<RwLock<Vec<Option<String>>>>;

/// Sends `records` in batches to hub `home`; while it is down (or a call fails), to the next
/// live one, as a load balancer would. A batch sent twice is harmless: `DUPLICATE`.
async fn sender(home: usize, records: Vec<pb::Record>, live: Live) {
    use pb::ingest_service_client::IngestServiceClient;
    let mut clients: HashMap<String, IngestServiceClient<tonic::transport::Channel>> =
        HashMap::new();
    for batch in records.chunks(250) {
        let mut attempt = 0;
        loop {
            let target = {
                let live = live.read().expect("not poisoned");
                (0..HUBS)
                    .map(|k| (home + attempt + k) % HUBS)
                    .find_map(|k| live[k].clone())
            };
            attempt += 1;
            assert!(attempt < 1_000, "no hub took a batch");
            let Some(target) = target else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if !clients.contains_key(&target) {
                match IngestServiceClient::connect(target.clone()).await {
                    Ok(c) => {
                        clients.insert(target.clone(), c);
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let client = clients.get_mut(&target).expect("connected");
            let request = pb::SubmitRequest {
                records: batch.to_vec(),
            };
            match client.submit(request).await {
                Ok(response) => {
                    let outcomes = response.into_inner().outcomes;
                    assert_eq!(outcomes.len(), batch.len());
                    assert!(
                        outcomes
                            .iter()
                            .all(|o| o.status() != pb::RecordStatus::Rejected),
                        "valid records are never rejected: {outcomes:?}"
                    );
                    break;
                }
                Err(_) => {
                    clients.remove(&target);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Every dossier a hub serves, as of `as_of`, with arrival times cleared.
async fn dossiers(grpc: &str, as_of: &str) -> Vec<Vec<u8>> {
    let mut client = pb::dossier_service_client::DossierServiceClient::connect(grpc.to_owned())
        .await
        .expect("connects")
        .max_decoding_message_size(64 << 20);
    let mut stream = client
        .list_dossiers(pb::ListDossiersRequest {
            as_of: as_of.to_owned(),
            purpose: "scale-out-test".into(),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    let mut out = Vec::new();
    while let Some(mut d) = stream.message().await.expect("streams") {
        for p in &mut d.provenance {
            p.received_at.clear();
        }
        out.push(d.encode_to_vec());
    }
    out
}

async fn settled(store: &Store, feed: &Feed, broker: &Broker, distinct: i64) -> bool {
    if store.table_count(Table::SourceRecords).await.unwrap() != distinct {
        return false;
    }
    for q in feed.queues() {
        if broker.ready(&q).await.unwrap_or(1) != 0 {
            return false;
        }
    }
    count(store, "SELECT COUNT(*) AS n FROM dossier_dirty").await == 0
        && store.outbox_depth().await.unwrap() == 0
}

fn sigterm(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_one_killed_equal_a_single_hub() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(cluster_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let Some(single_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let started = std::time::Instant::now();
    let (in_order, arrivals) = record_sets(97);
    let distinct: HashSet<_> = in_order.iter().map(key).collect();
    assert_eq!(arrivals.len(), TOTAL);
    let repeats = TOTAL - in_order.len();
    let older = in_order.len() - distinct.len();

    // Half the arrivals over AMQP (already waiting in the queues), half over gRPC.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (mut over_grpc, mut over_amqp) = (Vec::new(), Vec::new());
    for r in arrivals {
        if rng.gen_bool(0.5) {
            over_grpc.push(r);
        } else {
            over_amqp.push(r);
        }
    }
    let feed = Feed::new(200);
    feed.declare(&broker).await.unwrap();
    broker
        .publish_all("trainhub.in", &feed.messages(&over_amqp))
        .await
        .unwrap();
    let exchange = random_name("trainhub.dossier.t");
    let watch = random_name("watch-");
    broker.watch(&watch, &exchange, "#").await.unwrap();

    // The shared secret and schema first, as an operator's first start would make them.
    let dir = cluster_store.dir.path().to_owned();
    let pipeline = trainhub::startup::open_pipeline(&TestHub::config_for(&cluster_store), true)
        .await
        .unwrap();
    let store = pipeline.store().clone();
    for i in 0..HUBS {
        config_file(&dir, i, &cluster_store.url, &exchange, &feed);
    }
    let mut hubs = Vec::new();
    for i in 0..HUBS {
        hubs.push(start_hub(&dir, i).await);
    }
    let live: Live = Arc::new(RwLock::new(
        hubs.iter().map(|h| Some(h.grpc.clone())).collect(),
    ));
    let share = over_grpc.len().div_ceil(HUBS);
    let senders: Vec<_> = over_grpc
        .chunks(share)
        .enumerate()
        .map(|(i, part)| tokio::spawn(sender(i, part.to_vec(), live.clone())))
        .collect();

    // Mid-way, one hub dies without warning and comes back a little later.
    let stored = || async { store.table_count(Table::SourceRecords).await.unwrap() };
    let midway = wait_for(Duration::from_secs(600), || async {
        stored().await >= distinct.len() as i64 * 2 / 5
    })
    .await;
    assert!(midway, "the cluster stores records");
    live.write().unwrap()[VICTIM] = None;
    hubs[VICTIM].child.start_kill().expect("SIGKILL");
    hubs[VICTIM].child.wait().await.unwrap();
    let at_kill = stored().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    hubs[VICTIM] = start_hub(&dir, VICTIM).await;
    live.write().unwrap()[VICTIM] = Some(hubs[VICTIM].grpc.clone());

    for s in senders {
        s.await.expect("sender");
    }
    let done = wait_for(Duration::from_secs(900), || {
        settled(&store, &feed, &broker, distinct.len() as i64)
    })
    .await;
    assert!(
        done,
        "the cluster settles: {}",
        std::fs::read_to_string(dir.join("hub-0.log")).unwrap_or_default()
    );
    let cluster_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        stored_keys(&store).await,
        distinct,
        "no valid record missing"
    );
    assert_eq!(store.table_count(Table::DeadLetters).await.unwrap(), 0);

    // Any instance lists the three instances' connectors.
    let mut client =
        pb::sync_health_service_client::SyncHealthServiceClient::connect(hubs[0].grpc.clone())
            .await
            .unwrap();
    let instances: HashSet<String> = client
        .list_connectors(pb::ListConnectorsRequest {})
        .await
        .unwrap()
        .into_inner()
        .connectors
        .into_iter()
        .filter(|c| feed.connectors.iter().any(|f| f.name == c.name))
        .map(|c| c.instance)
        .collect();
    assert_eq!(
        instances,
        (0..HUBS).map(|i| format!("hub-{i}")).collect(),
        "every instance's consumers listed"
    );

    let as_of = trainhub_pipeline::queries::today().to_string();
    let cluster_dossiers = dossiers(&hubs[0].grpc, &as_of).await;
    for hub in &hubs {
        sigterm(&hub.child);
    }
    for hub in &mut hubs {
        let status = tokio::time::timeout(Duration::from_secs(60), hub.child.wait())
            .await
            .expect("stops on SIGTERM")
            .unwrap();
        assert!(status.success());
    }

    // The reference: one hub, the same records in order, one batch after another.
    let secret = dir.join("hub.secret");
    let single = TestHub::start_with(single_store, |c| {
        c.identity.secret_file = Some(secret);
    })
    .await;
    let mut ingest = single.ingest().await;
    for batch in in_order.chunks(250) {
        ingest
            .submit(pb::SubmitRequest {
                records: batch.to_vec(),
            })
            .await
            .unwrap();
    }
    let projected = wait_for(Duration::from_secs(600), || async {
        count(&single.store, "SELECT COUNT(*) AS n FROM dossier_dirty").await == 0
    })
    .await;
    assert!(projected);
    let single_dossiers = dossiers(&format!("http://{}", single.grpc_addr), &as_of).await;
    assert!(single_dossiers.len() >= 6_000, "{}", single_dossiers.len());
    assert_eq!(
        cluster_dossiers.len(),
        single_dossiers.len(),
        "as many dossiers"
    );
    let differing = cluster_dossiers
        .iter()
        .zip(&single_dossiers)
        .filter(|(a, b)| a != b)
        .count();
    if let Some((a, b)) = cluster_dossiers
        .iter()
        .zip(&single_dossiers)
        .find(|(a, b)| a != b)
    {
        let (a, b) = (
            pb::Dossier::decode(a.as_slice()).unwrap(),
            pb::Dossier::decode(b.as_slice()).unwrap(),
        );
        panic!("{differing} dossiers differ; the first:\ncluster {a:#?}\nsingle {b:#?}");
    }
    assert_eq!(
        trainhub_tests::comparable_state(&store).await,
        trainhub_tests::comparable_state(&single.store).await,
        "current versions and dossier state"
    );

    // Events: every change of every dossier announced; a repeat only from the killed hub.
    let announced: BTreeMap<String, i64> = {
        use sqlx::Row;
        sqlx::query("SELECT person_key, seq FROM dossier_events")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("person_key"), r.get("seq")))
            .collect()
    };
    let changes: i64 = announced.values().sum();
    let events = broker.drain(&watch, Duration::from_secs(3)).await.unwrap();
    let mut copies: HashMap<String, Vec<String>> = HashMap::new();
    for d in &events {
        let id = d
            .properties
            .message_id()
            .as_ref()
            .expect("message id")
            .to_string();
        let from = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| {
                h.inner()
                    .get(trainhub_connectors::amqp::relay::INSTANCE_HEADER)
                    .cloned()
            })
            .and_then(|v| v.as_long_string().map(|s| s.to_string()))
            .expect("instance header");
        copies.entry(id).or_default().push(from);
    }
    let expected_ids: HashSet<String> = announced
        .iter()
        .flat_map(|(pk, seq)| (1..=*seq).map(move |s| format!("{pk}:{s}")))
        .collect();
    assert_eq!(
        copies.keys().cloned().collect::<HashSet<_>>(),
        expected_ids,
        "each change announced"
    );
    let repeated: Vec<_> = copies.iter().filter(|(_, v)| v.len() > 1).collect();
    let victim = format!("hub-{VICTIM}");
    assert!(
        repeated
            .iter()
            .all(|(_, from)| from.len() == 2 && from.contains(&victim)),
        "only the killed hub's unconfirmed events repeat: {repeated:?}"
    );
    assert!(
        repeated.len() <= usize::from(EVENT_BATCH),
        "{}",
        repeated.len()
    );
    let by_instance = copies.values().flatten().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.clone()).or_insert(0) += 1;
        m
    });
    println!(
        "{TOTAL} arrivals ({} gRPC, {} AMQP; {repeats} repeats, {older} older versions) → {} \
         records; killed hub-{VICTIM} at {at_kill} stored; cluster settled in {cluster_seconds:.0} s; \
         {} dossiers equal; {changes} changes, {} events ({} repeated after the kill), by instance \
         {by_instance:?}",
        over_grpc.len(),
        over_amqp.len(),
        distinct.len(),
        single_dossiers.len(),
        events.len(),
        repeated.len()
    );
    single.stop().await;
    store.close().await;
    let mut queues = feed.queues();
    queues.push(watch);
    broker.delete(&queues).await;
    broker.delete_exchange(&exchange).await;
}
