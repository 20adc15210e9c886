//! Opening the store the configuration names and the pipeline over it: migrated, the hub's
//! secret and keys checked against what the store recorded, the policy loaded. Also the lock
//! that keeps a second hub off an SQLite store.

use super::secrets::{data_key_source, load_keys, load_secret};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use trainhub_model::policy::Policy;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::Pipeline;
use trainhub_store::Store;

/// Before a command reads a store: the URL is one trainhub reads, an embedded store exists
/// (reading never creates one), and a server answers — each said on its own, before the
/// secret and keys are looked for.
async fn check_readable(config: &Config) -> Result<()> {
    let url = config.store_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or_default();
        if !std::path::Path::new(path).exists() {
            anyhow::bail!(
                "no store at {path}: nothing has been served from this data folder. Point \
                 --data-dir at the hub's data folder (the one holding trainhub.db, hub.secret \
                 and data.keys), or --store / --config at its store"
            );
        }
        return Ok(());
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let hint = if url.contains("://") {
            String::new()
        } else {
            format!(" (for a SQLite file: sqlite://{url})")
        };
        anyhow::bail!(
            "`{}` is not a store trainhub reads: use sqlite://PATH or \
             postgres://USER@HOST/DB{hint}",
            redact(&url)
        );
    }
    // Reaching the server needs no secret: a throwaway keyring opens nothing.
    let probe = trainhub_store::Keyring::generate("probe");
    Store::connect(&url, probe)
        .await
        .with_context(|| format!("cannot reach the store {}", redact(&url)))?
        .close()
        .await;
    Ok(())
}

/// Opens the store named by `config` (migrating it), the hub secret and the policy: what every
/// command that reads or writes records needs, with or without a running hub.
pub async fn open_pipeline(config: &Config, create_secret: bool) -> Result<Pipeline> {
    // The secret first: a reader pointed at the wrong folder is told so before anything is
    // created there.
    if create_secret {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!("creating data folder {}", config.server.data_dir.display())
        })?;
    }
    if !create_secret {
        check_readable(config).await?;
    }
    let secret = load_secret(config, create_secret)?;
    let keys = load_keys(config, create_secret)?;
    let store = Store::connect(&config.store_url(), keys)
        .await
        .with_context(|| format!("connecting to store {}", redact(&config.store_url())))?
        .with_events(config.events.url.is_some());
    store.migrate().await.context("migrating the store")?;
    check_identity(config, &store, &secret).await?;
    store.check_keys().await.with_context(|| {
        format!(
            "the data keys ({}) do not open what the store holds: every hub sharing a store \
             needs the same keyring",
            data_key_source(config)
        )
    })?;
    let policy = match &config.policy.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy file {}", path.display()))?;
            Policy::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("policy file {}: {}", path.display(), e.message))?
        }
        None => Policy::default(),
    };
    let scopes = config
        .connectors
        .iter()
        .map(|c| (c.name().to_owned(), c.system().to_owned()))
        .collect();
    Ok(
        Pipeline::new(store, PersonKeyer::new(&secret), Arc::new(policy))
            .with_scopes(scopes)
            .with_unit_authorities(config.unit_authorities()?)
            .with_decoder(Arc::new(trainhub_connectors::native::Formats)),
    )
}

/// Refuses a hub whose secret or keys differ from what the store was first used with, before
/// anything is written, naming the difference and the fix.
async fn check_identity(config: &Config, store: &Store, secret: &[u8]) -> Result<()> {
    let check = trainhub_store::seal::check_value("hub secret", secret);
    let Err(mismatches) = store
        .check_identity(&check)
        .await
        .context("checking the store's recorded hub secret and data keys")?
    else {
        return Ok(());
    };
    let secret_file = config
        .identity
        .secret_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("hub.secret"));
    let mut lines = Vec::new();
    for m in &mismatches {
        lines.push(match m {
            trainhub_store::identity::Mismatch::Secret => format!(
                "- the hub secret ({}) is not the one this store was first used with. Every hub \
                 on one store needs the same secret, or one person's records split across \
                 person keys: copy hub.secret from the first hub's data folder (or point \
                 [identity] secret_file at it), or give this hub a store of its own.",
                secret_file.display()
            ),
            trainhub_store::identity::Mismatch::Key(id) => format!(
                "- data key `{id}` ({}) is not the key this store knows under that id. Every \
                 hub on one store needs the same keyring: copy the first hub's data.keys (or \
                 its [identity] data_keys); a new key needs a new id (`trainhub key`).",
                data_key_source(config)
            ),
        });
    }
    bail!(
        "this hub does not belong to store {}; nothing was written:\n{}",
        redact(&config.store_url()),
        lines.join("\n")
    )
}

/// Takes the lock of an SQLite store (a file beside the database) for as long as the hub
/// serves: a second hub on the same SQLite store is refused, since SQLite takes one writer
/// process and the hubs would fight over the projection. `None` for PostgreSQL.
pub(super) fn sqlite_lock(config: &Config) -> Result<Option<std::fs::File>> {
    let url = config.store_url();
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(None);
    };
    let db = rest.split('?').next().unwrap_or(rest);
    if db.is_empty() || db.starts_with(':') {
        return Ok(None); // in memory
    }
    let path = std::path::PathBuf::from(format!("{db}.lock"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data folder {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another hub already serves the SQLite store {db} (its lock {} is held): one \
             SQLite store takes one hub. Stop the other hub, give this one a data folder of its \
             own (--data-dir), or move the store to PostgreSQL to run several hubs.",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// A store URL fit for messages: any password removed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
