//! Secrets at rest: the master keys that seal what would hand over an account if the database
//! leaked (a WhatsApp device's keys and credentials, webhook signing secrets).
//!
//! A value is sealed with XChaCha20-Poly1305 under the keyring's first key, with a random
//! 24-byte nonce (random nonces are safe at that size) and, as associated data, the row it
//! belongs to, so that a sealed value copied into another row does not open. The id of the
//! key is stored beside the value, so that a keyring of several keys (the current one first,
//! then earlier ones) opens values sealed before a rotation while new ones use the current key.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Generate, Key, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 24;

/// How often, at most, a keyring reads its source again for a key it lacks.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The name of a master key: the first 16 hex digits of a hash of it, so that it can be
/// stored and shown without revealing the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One 256-bit master key. Written as standard base64 (44 characters).
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    key: Key<XChaCha20Poly1305>,
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_key(Key::<XChaCha20Poly1305>::generate())
    }

    /// Reads a key written by [`MasterKey::to_base64`].
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| KeyError::Malformed)?;
        let key = Key::<XChaCha20Poly1305>::try_from(bytes.as_slice()).map_err(|_| KeyError::Malformed)?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: Key<XChaCha20Poly1305>) -> Self {
        let digest = Sha256::new().chain_update(b"wagate master key id\0").chain_update(key).finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { id: KeyId(id), key }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key as standard base64, for a key file or an environment variable.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Why master keys could not be had or a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a master key is not 32 bytes in standard base64")]
    Malformed,
    #[error("no master key is configured")]
    Empty,
    #[error("cannot read the master keys: {0}")]
    Source(String),
    #[error(
        "a secret in the database is sealed with master key {0}, which this keyring lacks \
         (every node needs the keys the others use: see WAGATE_MASTER_KEY)"
    )]
    Unknown(String),
    #[error(
        "a secret in the database sealed with master key {0} does not open: the key is not the one \
             it was sealed with, or the value was altered"
    )]
    Tampered(String),
}

/// A value sealed under a master key, as stored: the key's id beside nonce and ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: KeyId,
    /// The nonce, then the ciphertext with its tag.
    pub bytes: Vec<u8>,
}

impl Sealed {
    /// The bytes as standard base64, for a text column.
    pub fn to_text(&self) -> String {
        STANDARD.encode(&self.bytes)
    }
}

type Load = dyn Fn() -> Result<Vec<MasterKey>, KeyError> + Send + Sync;

/// The master keys a node holds: the first seals, all of them open. Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<RwLock<Vec<MasterKey>>>,
    /// Where the keys come from, read again when a value names a key this keyring lacks (a
    /// rotation by another process that rewrote the key file): so a running node learns the
    /// new key without a restart.
    source: Option<Arc<Load>>,
    last_load: Arc<Mutex<Instant>>,
}

impl Keyring {
    /// A keyring of fixed keys, the first sealing.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            source: None,
            last_load: Arc::new(Mutex::new(Instant::now())),
        })
    }

    /// A keyring read from `load` now, and again when it meets a key it lacks.
    pub fn reloading(
        load: impl Fn() -> Result<Vec<MasterKey>, KeyError> + Send + Sync + 'static,
    ) -> Result<Self, KeyError> {
        let mut keyring = Self::new(load()?)?;
        keyring.source = Some(Arc::new(load));
        Ok(keyring)
    }

    /// The id of the key that seals.
    pub fn current(&self) -> KeyId {
        self.read()[0].id.clone()
    }

    /// The ids of every key held, the sealing one first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.read().iter().map(|k| k.id.clone()).collect()
    }

    /// Seals `plaintext` under the current key, bound to `row` (what names the value's place).
    pub fn seal(&self, plaintext: &[u8], row: &[u8]) -> Sealed {
        let keys = self.read();
        let key = &keys[0];
        let nonce = XNonce::generate();
        let ciphertext = XChaCha20Poly1305::new(&key.key)
            .encrypt(&nonce, Payload { msg: plaintext, aad: row })
            .expect("XChaCha20-Poly1305 seals any value that fits in memory");
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Sealed { key_id: key.id.clone(), bytes }
    }

    /// Opens a value sealed under the key `key_id` for `row`.
    pub fn open(&self, key_id: &str, sealed: &[u8], row: &[u8]) -> Result<Vec<u8>, KeyError> {
        if !self.holds(key_id) {
            self.reload();
        }
        let keys = self.read();
        let key =
            keys.iter().find(|k| k.id.0 == key_id).ok_or_else(|| KeyError::Unknown(key_id.to_owned()))?;
        let tampered = || KeyError::Tampered(key_id.to_owned());
        if sealed.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| tampered())?;
        XChaCha20Poly1305::new(&key.key)
            .decrypt(&nonce, Payload { msg: ciphertext, aad: row })
            .map_err(|_| tampered())
    }

    /// Opens a value of a text column (base64, as [`Sealed::to_text`] wrote it).
    pub fn open_text(&self, key_id: &str, sealed: &str, row: &[u8]) -> Result<Vec<u8>, KeyError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| KeyError::Tampered(key_id.to_owned()))?;
        self.open(key_id, &bytes, row)
    }

    /// Whether the keyring holds `key_id`, reading its source again if it does not.
    pub fn knows(&self, key_id: &str) -> bool {
        self.holds(key_id) || {
            self.reload();
            self.holds(key_id)
        }
    }

    fn holds(&self, key_id: &str) -> bool {
        self.read().iter().any(|k| k.id.0 == key_id)
    }

    /// Reads the source again, at most once per [`RELOAD_INTERVAL`]; keeps the keys it has when
    /// the source cannot be read.
    fn reload(&self) {
        let Some(source) = &self.source else { return };
        {
            let mut last = self.last_load.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < RELOAD_INTERVAL {
                return;
            }
            *last = Instant::now();
        }
        match source() {
            Ok(keys) if !keys.is_empty() => {
                let ids: Vec<String> = keys.iter().map(|k| k.id.0.clone()).collect();
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
                tracing::info!(keys = ?ids, "read the master keys again");
            }
            Ok(_) => tracing::warn!("the master key source is empty; keeping the keys read before"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the master keys again; keeping those read before")
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<MasterKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_row() {
        let key = MasterKey::generate();
        let keyring = Keyring::new(vec![key.clone()]).unwrap();
        let sealed = keyring.seal(b"identity key", b"row 1");
        assert_eq!(sealed.key_id, *key.id());
        assert!(!sealed.bytes.windows(12).any(|w| w == b"identity key"));
        assert_eq!(keyring.open(key.id().as_str(), &sealed.bytes, b"row 1").unwrap(), b"identity key");
        assert!(matches!(
            keyring.open(key.id().as_str(), &sealed.bytes, b"row 2"),
            Err(KeyError::Tampered(_))
        ));

        let other = Keyring::new(vec![MasterKey::generate()]).unwrap();
        assert!(matches!(other.open(key.id().as_str(), &sealed.bytes, b"row 1"), Err(KeyError::Unknown(_))));
    }

    #[test]
    fn a_keyring_opens_with_every_key_and_seals_with_the_first() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let before = Keyring::new(vec![old.clone()]).unwrap().seal(b"secret", b"row");
        let keyring = Keyring::new(vec![new.clone(), old.clone()]).unwrap();
        assert_eq!(keyring.open(old.id().as_str(), &before.bytes, b"row").unwrap(), b"secret");
        assert_eq!(keyring.seal(b"secret", b"row").key_id, *new.id());
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_ones_are_refused() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::parse(&key.to_base64()).unwrap().id(), key.id());
        assert!(matches!(MasterKey::parse("c2hvcnQ="), Err(KeyError::Malformed)));
        assert!(matches!(MasterKey::parse("not base64!"), Err(KeyError::Malformed)));
    }
}
