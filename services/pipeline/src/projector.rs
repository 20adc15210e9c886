//! The projector loop: keeps each marked person's dossier state and outbox row current, off
//! the request path. It steps aside while batches are committing (a burst is projected once
//! it pauses; a long burst gets half a core at least every ten seconds), and backs off while
//! the store fails. After each round it reclaims the state rows re-projection replaced once
//! they are a tenth of the table (`Store::reclaim_state`), so that the drain reuses their
//! space; when a burst is over it tidies the state table (see `Store::tidy_projection`), and
//! every five seconds it refreshes the planner's statistics a load has made stale
//! (`Store::refresh_statistics`).

use crate::Pipeline;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use trainhub_store::projection::Lane;

/// Keeps the dossier state current: drains the persons marked dirty by ingest. While batches
/// are streaming in, it steps aside for up to ten seconds so that a person touched by many
/// batches of a burst is projected once rather than once per batch; readers never see the lag
/// (a dirty person's dossier is computed from the source records, and coverage drains first).
/// A failed round is logged and retried with backoff; the marks stay until a round clears them.
///
/// It runs one loop per lane of the marks ([`Lane`]), as many as the machine has cores (at most
/// four): while one lane waits for the database, another computes. During a burst only the
/// first lane runs, over every mark, and it rests after each round as long as the round took:
/// ingest keeps the other cores and half of that one. Every round during a burst projects
/// persons a later batch may touch again, so the work is better spent once the burst pauses;
/// readers do not wait for it either way.
pub async fn run(pipeline: Pipeline, stop: tokio::sync::broadcast::Receiver<()>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut lanes = tokio::task::JoinSet::new();
    // Persons projected by every lane since the last tidy.
    let projected = Arc::new(AtomicUsize::new(0));
    for lane in Lane::all(cores.min(4)) {
        lanes.spawn(run_lane(
            pipeline.clone(),
            lane,
            projected.clone(),
            stop.resubscribe(),
        ));
    }
    while lanes.join_next().await.is_some() {}
}

async fn run_lane(
    pipeline: Pipeline,
    lane: Lane,
    projected: Arc<AtomicUsize>,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    use std::time::{Duration, Instant};
    const TICK: Duration = Duration::from_millis(100);
    const MAX_LAG: Duration = Duration::from_secs(10);
    // A check is one catalog read; an `ANALYZE` (a sample, a few hundred milliseconds at most)
    // follows only when a tenth of a table changed. Once a minute was too rare: a load of
    // 400,000 records took under a minute and was projected on the empty table's plan.
    const STATISTICS_EVERY: Duration = Duration::from_secs(5);
    let mut last_drain = Instant::now();
    let mut last_statistics: Option<Instant> = None;
    let mut backoff = TICK;
    // The day the states were last brought to: when the date changes (and at start) the first
    // lane marks the states of other days (for every lane), so readers of the new day find
    // them current.
    let mut day = None;
    loop {
        let busy = streaming(&pipeline);
        let pause = if busy && (last_drain.elapsed() < MAX_LAG || !lane.is_first()) {
            // While batches stream in, the first lane alone projects every mark: projection
            // then takes one core from ingest, not all of them.
            TICK
        } else {
            let scope = if busy { Lane::ALL } else { lane };
            let today = crate::queries::today();
            if lane.is_first() && day != Some(today) {
                match pipeline.store().mark_other_days(today).await {
                    Ok(()) => day = Some(today),
                    Err(e) => tracing::warn!(error = %e, "Could not mark states of other days."),
                }
            }
            loop {
                // Also between rounds of one long drain: a bulk load's backlog keeps this loop
                // going for as long as the load and its drain last, and the statistics a load
                // makes stale are what slows the drain.
                if lane.is_first()
                    && last_statistics.is_none_or(|t| t.elapsed() >= STATISTICS_EVERY)
                {
                    last_statistics = Some(Instant::now());
                    refresh_statistics(&pipeline).await;
                }
                let round = Instant::now();
                match pipeline
                    .store()
                    .project_lane(pipeline.policy(), today, 1000, scope)
                    .await
                {
                    Ok(0) => {
                        last_drain = Instant::now();
                        backoff = TICK;
                        // One lane tidies for all: the tables are shared.
                        if lane.is_first() && !busy {
                            tidy_when_drained(&pipeline, &projected).await;
                        }
                        break TICK;
                    }
                    Ok(n) => {
                        projected.fetch_add(n, Ordering::Relaxed);
                        if lane.is_first() {
                            reclaim_state(&pipeline).await;
                        }
                        if streaming(&pipeline) {
                            // Batches still stream in: rest as long as the round took, so
                            // the projector takes half of its core while ingest goes on.
                            break round.elapsed();
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Dossier projection failed; retrying.");
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        break backoff;
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.recv() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Whether batches are streaming in: one committed within the last 300 ms.
fn streaming(pipeline: &Pipeline) -> bool {
    const QUIET: std::time::Duration = std::time::Duration::from_millis(300);
    pipeline.since_last_commit().is_some_and(|d| d < QUIET)
}

/// Refreshes the planner's statistics of the tables the projector reads where a load has made
/// them stale (see `Store::refresh_statistics`); a failure only costs speed.
async fn refresh_statistics(pipeline: &Pipeline) {
    let started = std::time::Instant::now();
    match pipeline.store().refresh_statistics().await {
        Ok(tables) if tables.is_empty() => {}
        Ok(tables) => tracing::info!(
            tables = tables.join(", "),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Refreshed the planner's statistics of tables a load has changed."
        ),
        Err(e) => tracing::warn!(error = %e, "Could not refresh the planner's statistics."),
    }
}

/// Reclaims the state rows re-projection replaced once there are enough of them (see
/// `Store::reclaim_state`); a failure only costs space.
async fn reclaim_state(pipeline: &Pipeline) {
    let started = std::time::Instant::now();
    match pipeline.store().reclaim_state().await {
        Ok(false) => {}
        Ok(true) => tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Reclaimed the dossier state's replaced rows."
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Could not reclaim the dossier state's replaced rows.")
        }
    }
}

/// Tidies the projection's tables once every lane has drained its marks after a burst of at
/// least a thousand persons (`projected` counts them over all lanes); a failure only costs
/// space. Asked after each of the first lane's drained rounds: while other lanes still drain,
/// the next round asks again.
async fn tidy_when_drained(pipeline: &Pipeline, projected: &AtomicUsize) {
    const TIDY_AFTER: usize = 1000;
    if projected.load(Ordering::Relaxed) < TIDY_AFTER
        || !matches!(pipeline.store().dirty_count().await, Ok(0))
    {
        return;
    }
    let projected = projected.swap(0, Ordering::Relaxed);
    let started = std::time::Instant::now();
    match pipeline.store().tidy_projection().await {
        Ok(()) => tracing::debug!(
            projected,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Tidied the dossier state after a burst."
        ),
        Err(e) => tracing::warn!(error = %e, "Could not tidy the dossier state."),
    }
}
