//! Sealed values on the command line: `trainhub key` makes a keyring entry, `trainhub
//! rekey` reseals the store under the keyring's first key, `trainhub migrate --rewrite` moves
//! values of the text layout into bytes.

use crate::cli::KeyArgs;
use crate::config::Config;
use crate::startup::{data_key_source, open_pipeline};
use anyhow::Result;
use std::io::{IsTerminal, Write};
use trainhub_store::Keyring;

/// Prints a fresh `id:hex` entry.
pub fn new_key(args: &KeyArgs) -> Result<()> {
    let id = args.id.clone().unwrap_or_else(crate::startup::new_key_id);
    let entry = Keyring::new_entry(&id);
    // Parsing it checks the id.
    Keyring::parse(&entry).map_err(|e| anyhow::anyhow!("--id {id:?}: {e}"))?;
    println!("{entry}");
    eprintln!(
        "1. Add this line to the data key file of every hub BELOW the current first line, and \
         restart the hubs (each can then open what the others seal with it).\n\
         2. Move it to the top and restart the hubs: new values are sealed with it.\n\
         3. Run `trainhub rekey`; afterwards the older lines can go (keep a copy while backups \
         need them)."
    );
    Ok(())
}

/// Reseals every personal-data column under the active key, with progress on a terminal.
pub async fn rekey(config: &Config) -> Result<()> {
    let pipeline = open_pipeline(config, false).await?;
    let store = pipeline.store();
    let keys = store.keys();
    eprintln!(
        "Resealing under key {} (keyring {}: {})",
        keys.active(),
        data_key_source(config),
        keys.ids().collect::<Vec<_>>().join(", ")
    );
    let progress = Progress::new(false);
    let report = store
        .rekey(|done| {
            progress.show(done.examined, || {
                format!(
                    "{:<22} {:>10} read {:>10} resealed",
                    done.column, done.examined, done.resealed
                )
            })
        })
        .await;
    progress.finish();
    let report = report?;
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "column", "read", "resealed", "changed"
    );
    for r in &report {
        println!(
            "{:<22} {:>10} {:>10} {:>10}",
            r.column, r.examined, r.resealed, r.skipped
        );
    }
    println!(
        "Every row is sealed under key {}; keys no longer needed: {}.",
        keys.active(),
        match keys
            .ids()
            .filter(|id| *id != keys.active())
            .collect::<Vec<_>>()
        {
            old if old.is_empty() => "none".to_owned(),
            old => old.join(", "),
        }
    );
    Ok(())
}

/// Moves the text values of an earlier layout into bytes, with progress on a terminal; says
/// how many rows remain when stopped by an error (run it again to go on).
pub async fn rewrite(config: &Config) -> Result<()> {
    let pipeline = open_pipeline(config, false).await?;
    let store = pipeline.store();
    let progress = Progress::new(true);
    let report = store
        .rewrite_text_values(|done| {
            progress.show(done.examined, || {
                format!(
                    "{:<27} {:>10} of {:>10} rewritten",
                    done.column, done.rewritten, done.total
                )
            })
        })
        .await;
    progress.finish();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let left = store.text_rows().await.unwrap_or_default();
            let left: u64 = left.iter().map(|(_, n)| n).sum();
            return Err(anyhow::anyhow!(
                "{e}; {left} rows are still in an earlier layout: run `trainhub migrate --rewrite` \
                 again to go on (rows already rewritten stay rewritten)"
            ));
        }
    };
    println!(
        "{:<27} {:>10} {:>10} {:>10}",
        "column", "read", "rewritten", "changed"
    );
    for r in &report {
        println!(
            "{:<27} {:>10} {:>10} {:>10}",
            r.column, r.examined, r.rewritten, r.skipped
        );
    }
    println!(
        "Every record body, content hash and person's facts is stored as bytes, every received \
         time the hub wrote as milliseconds, and the bodies of persons' records are kept once \
         (the projector folds the moved ones into their persons' state)."
    );
    Ok(())
}

/// Progress of a walk over the store's rows, on stderr: one line rewritten in place on a
/// terminal; in a log (when `log_lines`), a line every 50,000 rows.
struct Progress {
    terminal: bool,
    log_lines: bool,
}

impl Progress {
    fn new(log_lines: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            log_lines,
        }
    }

    /// After each page: `line` tells where the walk is, `examined` rows into it.
    fn show(&self, examined: u64, line: impl FnOnce() -> String) {
        if self.terminal {
            eprint!("\r  {}", line());
            let _ = std::io::stderr().flush();
        } else if self.log_lines && examined % 50_000 < trainhub_store::rekey::PAGE as u64 {
            eprintln!("  {}", line());
        }
    }

    /// Ends the line a terminal shows.
    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
