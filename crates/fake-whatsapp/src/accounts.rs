//! Accounts (a phone number, its LID and the phone's identity key) and their
//! companion devices, with the one PN↔LID alias table every handler resolves
//! JIDs through.

use std::collections::{BTreeMap, HashMap, VecDeque};

use anyhow::{anyhow, Result};
use serde::Serialize;
use wacore::libsignal::protocol::KeyPair;
use wacore_binary::{Jid, Node, Server};
use waproto::buffa::Message;
use waproto::whatsapp as wa;

use crate::noise::Pattern;

/// Signature prefix of a phone signing its key index list.
const KEY_INDEX_LIST_PREFIX: &[u8] = &[6, 2];

#[derive(Clone, Debug)]
pub(crate) struct SignedPreKey {
    pub id: u32,
    pub public: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What a companion announced about itself when it asked to be linked.
#[derive(Clone, Debug)]
pub(crate) struct Registration {
    pub noise_key: [u8; 32],
    pub identity: Vec<u8>,
    pub registration_id: u32,
    pub signed_prekey: SignedPreKey,
    /// The push name the client registered with, if it had one.
    pub push_name: Option<String>,
}

/// A stanza waiting in a device's queue until that device acks it.
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub class: String,
    pub id: String,
    pub kind: Option<String>,
    pub node: Node,
}

#[derive(Debug)]
pub(crate) struct Device {
    pub id: u16,
    pub noise_key: [u8; 32],
    pub identity: Vec<u8>,
    pub registration_id: u32,
    pub signed_prekey: SignedPreKey,
    pub prekeys: VecDeque<(u32, Vec<u8>)>,
    /// The `ADVSignedDeviceIdentity` the device returned in
    /// `pair-device-sign`; served in its prekey bundles.
    pub device_identity: Vec<u8>,
    pub key_index: u32,
    pub queue: Vec<Queued>,
    pub last_pattern: Option<Pattern>,
    pub logins: u32,
    /// Newly linked: the phone shares an app-state key once the device has
    /// uploaded prekeys to encrypt it with.
    pub key_share_pending: bool,
}

impl Device {
    pub(crate) fn new(id: u16, key_index: u32, reg: Registration, device_identity: Vec<u8>) -> Self {
        Self {
            id,
            noise_key: reg.noise_key,
            identity: reg.identity,
            registration_id: reg.registration_id,
            signed_prekey: reg.signed_prekey,
            prekeys: VecDeque::new(),
            device_identity,
            key_index,
            queue: Vec::new(),
            last_pattern: None,
            logins: 0,
            key_share_pending: true,
        }
    }

    /// Drops what the device acknowledged; `kind` narrows a receipt ack to the
    /// receipt type it names (a message id can have several receipts).
    pub(crate) fn acked(&mut self, class: &str, id: &str, kind: Option<&str>) -> usize {
        let before = self.queue.len();
        self.queue
            .retain(|q| !(q.class == class && q.id == id && (kind.is_none() || q.kind.as_deref() == kind)));
        before - self.queue.len()
    }
}

/// The phone: the account's identity and the device-0 bundle other clients
/// fetch. It never reads what is sent to it.
pub(crate) struct Phone {
    pub identity: KeyPair,
    pub registration_id: u32,
    pub signed_prekey: SignedPreKey,
    pub raw_id: u32,
}

impl Phone {
    fn generate() -> Result<Self> {
        let mut rng = rand::rng();
        let identity = KeyPair::generate(&mut rng);
        let spk = KeyPair::generate(&mut rng);
        // Signed over the 33-byte type-prefixed key, served as the bare 32 bytes.
        let signature = identity
            .private_key
            .calculate_signature(&spk.public_key.serialize(), &mut rng)
            .map_err(|e| anyhow!("{e}"))?;
        let spk_public = spk.public_key.public_key_bytes().to_vec();
        Ok(Self {
            identity,
            registration_id: rand::random::<u32>() % 16380 + 1,
            signed_prekey: SignedPreKey { id: 1, public: spk_public, signature: signature.to_vec() },
            raw_id: rand::random(),
        })
    }

    pub(crate) fn identity_public(&self) -> Vec<u8> {
        self.identity.public_key.public_key_bytes().to_vec()
    }
}

/// Why an account's devices may not log in.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Block {
    Banned { until: u64 },
    Outdated,
}

pub(crate) struct Account {
    pub phone: String,
    pub lid: String,
    pub name: Option<String>,
    pub phone_keys: Phone,
    pub next_device: u16,
    pub next_key_index: u32,
    pub devices: BTreeMap<u16, Device>,
    pub block: Option<Block>,
}

impl Account {
    /// The phone's signed list of the key indexes still valid for this
    /// account. Clients ignore a device list with companions but no such
    /// list; they do not check its signature yet, but it is a real one.
    pub(crate) fn signed_key_index_list(&self) -> Result<Vec<u8>> {
        let valid: Vec<u32> = self.devices.values().map(|d| d.key_index).collect();
        let details = wa::ADVKeyIndexList {
            raw_id: Some(self.phone_keys.raw_id),
            timestamp: Some(crate::stanza::now_secs()),
            current_index: Some(valid.iter().copied().max().unwrap_or(0)),
            valid_indexes: valid,
            account_type: Some(wa::ADVEncryptionType::E2EE),
        }
        .encode_to_vec();
        let mut to_sign = KEY_INDEX_LIST_PREFIX.to_vec();
        to_sign.extend_from_slice(&details);
        let signature = self
            .phone_keys
            .identity
            .private_key
            .calculate_signature(&to_sign, &mut rand::rng())
            .map_err(|e| anyhow!("{e}"))?;
        Ok(wa::ADVSignedKeyIndexList {
            details: Some(details),
            account_signature: Some(signature.to_vec()),
            account_signature_key: Some(self.phone_keys.identity_public()),
        }
        .encode_to_vec())
    }

    pub(crate) fn pn_jid(&self, device: u16) -> Jid {
        Jid::pn_device(self.phone.as_str(), device)
    }

    pub(crate) fn lid_jid(&self, device: u16) -> Jid {
        Jid::lid_device(self.lid.as_str(), device)
    }

    /// The JID of `device` in the same addressing family as `like`.
    pub(crate) fn jid_like(&self, like: &Jid, device: u16) -> Jid {
        if like.server == Server::Lid {
            self.lid_jid(device)
        } else {
            self.pn_jid(device)
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    pub accounts: BTreeMap<String, Account>,
    lid_to_phone: HashMap<String, String>,
}

impl Registry {
    pub(crate) fn get_or_create(&mut self, phone: &str) -> Result<&mut Account> {
        if !self.accounts.contains_key(phone) {
            let lid = loop {
                let candidate =
                    format!("{}", 100_000_000_000_000u64 + rand::random::<u64>() % 899_999_999_999_999);
                if !self.lid_to_phone.contains_key(&candidate) {
                    break candidate;
                }
            };
            self.lid_to_phone.insert(lid.clone(), phone.to_owned());
            let account = Account {
                phone: phone.to_owned(),
                lid,
                name: None,
                phone_keys: Phone::generate()?,
                next_device: 1,
                next_key_index: 1,
                devices: BTreeMap::new(),
                block: None,
            };
            self.accounts.insert(phone.to_owned(), account);
        }
        self.accounts.get_mut(phone).ok_or_else(|| anyhow!("account {phone} vanished"))
    }

    /// The phone number behind a PN or LID user.
    pub(crate) fn phone_of(&self, jid: &Jid) -> Option<String> {
        match jid.server {
            Server::Pn => self.accounts.contains_key(jid.user.as_str()).then(|| jid.user.to_string()),
            Server::Lid => self.lid_to_phone.get(jid.user.as_str()).cloned(),
            _ => None,
        }
    }

    pub(crate) fn account_of(&self, jid: &Jid) -> Option<&Account> {
        self.phone_of(jid).and_then(|p| self.accounts.get(&p))
    }

    pub(crate) fn account_of_mut(&mut self, jid: &Jid) -> Option<&mut Account> {
        let phone = self.phone_of(jid)?;
        self.accounts.get_mut(&phone)
    }
}
