//! The hub secret (it keys persons) and the data keyring (it seals personal data): read from
//! the configuration or the data folder, generated there on a first start.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::path::Path;
use trainhub_store::Keyring;

/// Reads the hub secret, generating one in the data folder on first start when `create`.
pub(super) fn load_secret(config: &Config, create: bool) -> Result<Vec<u8>> {
    let path = config
        .identity
        .secret_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("hub.secret"));
    if !path.exists() && config.identity.secret_file.is_none() {
        if !create {
            bail!(
                "no hub secret at {}: reading a store needs the hub secret and the data keys of \
                 the hubs that serve it (hub.secret and data.keys in their data folder). Point \
                 --data-dir at that folder, or give --config with [identity] secret_file and \
                 data_key_file",
                path.display()
            );
        }
        let secret: [u8; 32] = rand::random();
        write_private(&path, &hex::encode(secret))?;
        tracing::warn!(path = %path.display(), "Generated a new hub secret; keep it with the store.");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading hub secret {}", path.display()))?;
    let secret = hex::decode(text.trim())
        .with_context(|| format!("hub secret {} is not hex", path.display()))?;
    if secret.len() < 16 {
        bail!("hub secret {} is shorter than 16 bytes", path.display());
    }
    Ok(secret)
}

/// Where the data keyring file is: `[identity] data_key_file`, else `data.keys` in the data
/// folder.
pub fn data_key_path(config: &Config) -> std::path::PathBuf {
    config
        .identity
        .data_key_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("data.keys"))
}

/// Where the data keyring comes from, for messages: the setting or the file.
pub fn data_key_source(config: &Config) -> String {
    match &config.identity.data_keys {
        Some(_) => "[identity] data_keys".to_owned(),
        None => data_key_path(config).display().to_string(),
    }
}

/// Reads the data keyring (`[identity] data_keys`, else the key file), generating a one-key
/// file in the data folder on first start when `create`.
pub fn load_keys(config: &Config, create: bool) -> Result<Keyring> {
    let id = &config.identity;
    if let Some(text) = &id.data_keys {
        if id.data_key_file.is_some() {
            bail!("[identity] data_keys and data_key_file are both set: keep one");
        }
        return Keyring::parse(&text.0).map_err(|e| {
            anyhow::anyhow!("[identity] data_keys (TRAINHUB_IDENTITY__DATA_KEYS): {e}")
        });
    }
    let path = data_key_path(config);
    if !path.exists() && id.data_key_file.is_none() {
        if !create {
            bail!(
                "no data keys at {}: this data folder has never been served; point --data-dir, \
                 --store or --config at the hub's",
                path.display()
            );
        }
        let key_id = new_key_id();
        write_private(
            &path,
            &format!(
                "# trainhub data keys: `id:hex`, the first seals, every one opens.\n\
                 # Keep this file with the store: without it, stored personal data cannot be \
                 read.\n{}\n",
                Keyring::new_entry(&key_id)
            ),
        )?;
        tracing::warn!(
            path = %path.display(),
            key = %key_id,
            "Generated a local data key; national IDs, names and received records are sealed \
             with it. Keep it with the store."
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading data keys {}", path.display()))?;
    Keyring::parse(&text).map_err(|e| anyhow::anyhow!("data keys {}: {e}", path.display()))
}

/// A fresh key id: the date and a random suffix, so that ids made on one day never collide
/// (the key generated on a first start and one made by `trainhub key` the same day).
pub fn new_key_id() -> String {
    format!(
        "k{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d"),
        rand::random::<u16>()
    )
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
