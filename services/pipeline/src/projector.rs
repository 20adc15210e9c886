//! The projector loop: keeps each marked person's dossier state and outbox row current, off
//! the request path. It steps aside while batches are committing (a burst is projected once
//! it pauses, or at least every ten seconds), and backs off while the store fails.

use crate::Pipeline;

/// Keeps the dossier state current: drains the persons marked dirty by ingest. While batches
/// are streaming in, it steps aside for up to ten seconds so that a person touched by many
/// batches of a burst is projected once rather than once per batch; readers never see the lag
/// (a dirty person's dossier is computed from the source records, and coverage drains first).
/// A failed round is logged and retried with backoff; the marks stay until a round clears them.
pub async fn run(pipeline: Pipeline, mut stop: tokio::sync::broadcast::Receiver<()>) {
    use std::time::{Duration, Instant};
    const TICK: Duration = Duration::from_millis(100);
    const QUIET: Duration = Duration::from_millis(300);
    const MAX_LAG: Duration = Duration::from_secs(10);
    let mut last_drain = Instant::now();
    let mut backoff = TICK;
    // The day the states were last brought to: when the date changes (and at start) the
    // states of other days are marked, so readers of the new day find them current.
    let mut day = None;
    loop {
        let busy = pipeline.since_last_commit().is_some_and(|d| d < QUIET);
        let pause = if busy && last_drain.elapsed() < MAX_LAG {
            TICK
        } else {
            let today = crate::queries::today();
            if day != Some(today) {
                match pipeline.store().mark_other_days(today).await {
                    Ok(()) => day = Some(today),
                    Err(e) => tracing::warn!(error = %e, "Could not mark states of other days."),
                }
            }
            loop {
                match pipeline
                    .store()
                    .project_dirty(pipeline.policy(), today, 1000)
                    .await
                {
                    Ok(0) => {
                        last_drain = Instant::now();
                        backoff = TICK;
                        break TICK;
                    }
                    Ok(_) => continue,
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
