//! The master keys that seal secrets at rest: where they come from, and their rotation.
//!
//! From `master_key` (`WAGATE_MASTER_KEY`: base64 keys, comma-separated, the first seals), or
//! else from `<data_dir>/master.key` (one key a line, the first seals), generated on first
//! start with mode 0600. A node reads the file again when it meets a value sealed with a key it
//! lacks, which is how a running node learns the key `wagate rotate-master-key` put there.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::ExposeSecret;
use wagate_store::{KeyError, Keyring, MasterKey};

use crate::Config;

const KEY_FILE: &str = "master.key";

/// Where a node's master keys come from.
enum Source {
    /// `master_key` in the configuration: fixed for the life of the process.
    Configured(String),
    /// The key file in the data dir.
    File(PathBuf),
}

impl Source {
    fn of(config: &Config) -> Self {
        match config.master_key.as_ref().map(|k| k.expose_secret().trim()).filter(|k| !k.is_empty()) {
            Some(keys) => Source::Configured(keys.to_owned()),
            None => Source::File(config.data_dir.join(KEY_FILE)),
        }
    }
}

/// Parses keys separated by commas or newlines, the first sealing.
fn parse_keys(text: &str) -> Result<Vec<MasterKey>, KeyError> {
    let keys = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(MasterKey::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(keys)
}

fn read_file(path: &Path) -> Result<Vec<MasterKey>, KeyError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| KeyError::Source(format!("{}: {e}", path.display())))?;
    parse_keys(&text).map_err(|e| KeyError::Source(format!("{}: {e}", path.display())))
}

/// The keyring of this configuration; generates the key file when there is neither a
/// configured key nor a file.
pub(crate) fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    match Source::of(config) {
        Source::Configured(keys) => {
            let keys = parse_keys(&keys).context("master_key (WAGATE_MASTER_KEY) is not valid")?;
            Ok(Keyring::new(keys)?)
        }
        Source::File(path) => {
            if !path.exists() {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let key = MasterKey::generate();
                write_key_file(&path, std::slice::from_ref(&key))
                    .with_context(|| format!("cannot write the master key to {}", path.display()))?;
                tracing::warn!(
                    key = %key.id(),
                    "generated the master key that seals secrets at rest, kept in {}: back it up (see \
                     docs/operations.md); without it the WhatsApp sessions must be linked again",
                    path.display()
                );
            }
            let keyring = Keyring::reloading(move || read_file(&path))?;
            Ok(keyring)
        }
    }
}

/// What `wagate rotate-master-key` did.
#[derive(Debug)]
pub struct Rotation {
    /// The key that seals from now on.
    pub current: String,
    /// The keys still held to open what was sealed before (until the next rotation).
    pub previous: Vec<String>,
    /// How many values were sealed again.
    pub resealed: u64,
    /// Whether the key was generated into the key file (else it came from `master_key`).
    pub generated: bool,
}

/// Makes a new key current and seals every secret again under it, while the gateway may run.
///
/// With the key file: a new key is generated and written first in the file, the key it
/// replaces after it (running nodes read the file again when they meet the new key). With
/// `master_key` configured: the first key listed is the new one, the others the earlier ones;
/// nothing is generated.
pub async fn rotate(config: &Config) -> anyhow::Result<Rotation> {
    let source = Source::of(config);
    let file = match &source {
        Source::Configured(_) => None,
        Source::File(path) => {
            let held = read_file(path).context("rotate-master-key needs the current master key")?;
            let keys: Vec<MasterKey> = std::iter::once(MasterKey::generate()).chain(held.clone()).collect();
            write_key_file(path, &keys).with_context(|| format!("cannot write {}", path.display()))?;
            Some((path.clone(), keys))
        }
    };
    let keyring = keyring(config)?;
    let store = crate::open_store(&config.database_url()?, keyring.clone()).await?;
    let resealed = store.reseal_secrets().await;
    let in_use = store.sealing_key_ids().await;
    store.close().await;
    let (resealed, in_use) = (resealed?, in_use?);
    let mut ids: Vec<String> = keyring.ids().iter().map(ToString::to_string).collect();
    if let Some((path, keys)) = file {
        // The new key, the one it replaces (a running node may seal with it until it reads the
        // file again), and any older one something is still sealed with; the rest go.
        let kept: Vec<MasterKey> = keys
            .into_iter()
            .enumerate()
            .filter(|(i, k)| *i < 2 || in_use.iter().any(|id| id == k.id().as_str()))
            .map(|(_, k)| k)
            .collect();
        write_key_file(&path, &kept).with_context(|| format!("cannot write {}", path.display()))?;
        ids = kept.iter().map(|k| k.id().to_string()).collect();
    }
    let current = ids.remove(0);
    Ok(Rotation { current, previous: ids, resealed, generated: matches!(source, Source::File(_)) })
}

/// Writes the keys, one a line, readable by the owner only; replaces the file at once (a
/// running node never reads half of it).
fn write_key_file(path: &Path, keys: &[MasterKey]) -> std::io::Result<()> {
    use std::io::Write;
    let contents: String = keys.iter().map(|k| format!("{}\n", k.to_base64())).collect();
    let partial = path.with_extension("key.new");
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}
