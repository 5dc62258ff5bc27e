//! whatsapp-rust's storage traits over wagate's store: a session's device keys live in the
//! same database as its messages, under its session id, so the session can move between nodes.
//!
//! Every value is a row of `device_keys` in a namespace ("kind") per kind of state; values are
//! the crate's own bytes, or JSON for its structured records.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use wagate_core::{DeviceKey, DeviceKeys, DeviceKeysError, SessionId};
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::{
    merge_msg_secret_expiry, merge_msg_secret_message_ts, AppStateSyncKey, AppSyncStore, DeviceListRecord,
    DeviceStore, LidPnMappingEntry, MsgSecretEntry, MsgSecretStore, PendingInboundKey, PendingInboundRow,
    ProtocolStore, SignalStore, TcTokenEntry,
};
use whatsapp_rust::wacore::store::Device;

/// The namespaces of `device_keys`.
mod kind {
    pub(super) const DEVICE: &str = "device";
    pub(super) const IDENTITY: &str = "identity";
    pub(super) const SESSION: &str = "session";
    pub(super) const PREKEY: &str = "prekey";
    pub(super) const SIGNED_PREKEY: &str = "signed_prekey";
    pub(super) const SENDER_KEY: &str = "sender_key";
    pub(super) const SYNC_KEY: &str = "sync_key";
    pub(super) const LATEST_SYNC_KEY: &str = "latest_sync_key";
    pub(super) const APP_VERSION: &str = "app_version";
    pub(super) const MUTATION_MAC: &str = "mutation_mac";
    pub(super) const SENDER_KEY_DEVICES: &str = "sender_key_devices";
    pub(super) const LID: &str = "lid";
    pub(super) const PN: &str = "pn";
    pub(super) const BASE_KEY: &str = "base_key";
    pub(super) const DEVICE_LIST: &str = "device_list";
    pub(super) const GROUP_METADATA: &str = "group_metadata";
    pub(super) const TC_TOKEN: &str = "tc_token";
    pub(super) const SENT_MESSAGE: &str = "sent_message";
    pub(super) const PENDING_INBOUND: &str = "pending_inbound";
    pub(super) const MSG_SECRET: &str = "msg_secret";
}

/// One session's device state, as whatsapp-rust's `Backend`.
#[derive(Clone)]
pub struct SessionKeys {
    store: Arc<dyn DeviceKeys>,
    session: SessionId,
    /// Serializes this session's read-modify-write updates (token and secret merges).
    merges: Arc<Mutex<()>>,
}

impl SessionKeys {
    pub fn new(store: Arc<dyn DeviceKeys>, session: SessionId) -> Self {
        Self { store, session, merges: Arc::new(Mutex::new(())) }
    }

    async fn get(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let mut found = self.store.get_device_keys(&self.session, kind, &[key]).await.map_err(db)?;
        Ok(found.pop().map(|k| k.value))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, kind: &str, key: &str) -> Result<Option<T>> {
        self.get(kind, key).await?.map(|v| decode(&v)).transpose()
    }

    async fn put(&self, rows: Vec<DeviceKey>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.store.put_device_keys(&self.session, rows).await.map_err(db)
    }

    async fn delete(&self, kind: &str, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.store.delete_device_keys(&self.session, kind, keys).await.map_err(db)
    }

    async fn scan(&self, kind: &str, prefix: &str) -> Result<Vec<DeviceKey>> {
        self.store.scan_device_keys(&self.session, kind, prefix).await.map_err(db)
    }
}

fn db(e: DeviceKeysError) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Serialization(Box::new(e)))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Serialization(Box::new(e)))
}

/// Keys are text: binary ids are written as base64.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn parse_id(key: &str) -> Result<u32> {
    key.parse().map_err(|_| StoreError::Validation(format!("stored key id {key:?} is not a number")))
}

/// A key made of parts; `\u{1f}` (unit separator) appears in no JID or message id.
fn joined(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

#[async_trait]
impl SignalStore for SessionKeys {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::IDENTITY, address, key.to_vec(), 0)]).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let rows = identities
            .iter()
            .map(|(a, k)| DeviceKey::new(kind::IDENTITY, a.as_ref(), k.to_vec(), 0))
            .collect();
        self.put(rows).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        match self.get(kind::IDENTITY, address).await? {
            Some(bytes) => Ok(Some(bytes.try_into().map_err(|b: Vec<u8>| {
                StoreError::Validation(format!("identity key of {} bytes", b.len()))
            })?)),
            None => Ok(None),
        }
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete(kind::IDENTITY, &[address]).await.map(drop)
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self.get(kind::SESSION, address).await?.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::SESSION, address, session, 0)]).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows =
            sessions.iter().map(|(a, s)| DeviceKey::new(kind::SESSION, a.as_ref(), s.to_vec(), 0)).collect();
        self.put(rows).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete(kind::SESSION, &[address]).await.map(drop)
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` (device 0) or `user:device@server`.
        let (at, colon) = (format!("{user}@"), format!("{user}:"));
        self.store
            .any_device_key(&self.session, &[kind::SESSION, kind::IDENTITY], &[&at, &colon])
            .await
            .map_err(db)
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::PREKEY, id.to_string(), record, i64::from(uploaded))]).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let rows = keys
            .iter()
            .map(|(id, record)| {
                DeviceKey::new(kind::PREKEY, id.to_string(), record.to_vec(), i64::from(uploaded))
            })
            .collect();
        self.put(rows).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self.get(kind::PREKEY, &id.to_string()).await?.map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let keys: Vec<String> = ids.iter().map(u32::to_string).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = self.store.get_device_keys(&self.session, kind::PREKEY, &keys).await.map_err(db)?;
        let mut by_id: HashMap<u32, Bytes> = HashMap::with_capacity(found.len());
        for key in found {
            by_id.insert(parse_id(&key.key)?, Bytes::from(key.value));
        }
        // In the order asked, as the in-memory store answers.
        Ok(ids.iter().filter_map(|id| by_id.remove(id).map(|record| (*id, record))).collect())
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        let keys: Vec<String> = ids.iter().map(u32::to_string).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.store.set_device_key_numbers(&self.session, kind::PREKEY, &keys, 1).await.map_err(db)
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete(kind::PREKEY, &[&id.to_string()]).await.map(drop)
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let mut max = 0;
        for key in self.scan(kind::PREKEY, "").await? {
            max = max.max(parse_id(&key.key)?);
        }
        Ok(max)
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::SIGNED_PREKEY, id.to_string(), record, 0)]).await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(kind::SIGNED_PREKEY, &id.to_string()).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.scan(kind::SIGNED_PREKEY, "")
            .await?
            .into_iter()
            .map(|k| Ok((parse_id(&k.key)?, k.value)))
            .collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete(kind::SIGNED_PREKEY, &[&id.to_string()]).await.map(drop)
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::SENDER_KEY, address, record, 0)]).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = sender_keys
            .iter()
            .map(|(a, r)| DeviceKey::new(kind::SENDER_KEY, a.as_ref(), r.to_vec(), 0))
            .collect();
        self.put(rows).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(kind::SENDER_KEY, address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete(kind::SENDER_KEY, &[address]).await.map(drop)
    }
}

#[async_trait]
impl AppSyncStore for SessionKeys {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get_json(kind::SYNC_KEY, &b64(key_id)).await
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.put(vec![
            DeviceKey::new(kind::SYNC_KEY, b64(key_id), encode(&key)?, 0),
            DeviceKey::new(kind::LATEST_SYNC_KEY, "", key_id, 0),
        ])
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self.get_json(kind::APP_VERSION, name).await?.unwrap_or_default())
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::APP_VERSION, name, encode(&state)?, 0)]).await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        _version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let rows = mutations
            .iter()
            .map(|m| {
                DeviceKey::new(
                    kind::MUTATION_MAC,
                    joined(&[name, &b64(&m.index_mac)]),
                    m.value_mac.clone(),
                    0,
                )
            })
            .collect();
        self.put(rows).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(kind::MUTATION_MAC, &joined(&[name, &b64(index_mac)])).await
    }

    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let keys: HashMap<String, [u8; 32]> =
            index_macs.iter().map(|mac| (joined(&[name, &b64(mac)]), *mac)).collect();
        let asked: Vec<&str> = keys.keys().map(String::as_str).collect();
        let found =
            self.store.get_device_keys(&self.session, kind::MUTATION_MAC, &asked).await.map_err(db)?;
        Ok(found.into_iter().filter_map(|k| keys.get(&k.key).map(|mac| (*mac, k.value))).collect())
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let keys: Vec<String> = index_macs.iter().map(|mac| joined(&[name, &b64(mac)])).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(kind::MUTATION_MAC, &keys).await.map(drop)
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        let prefix = joined(&[name, ""]);
        self.store
            .delete_device_keys_by_prefix(&self.session, kind::MUTATION_MAC, &prefix)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(kind::LATEST_SYNC_KEY, "").await
    }
}

#[async_trait]
impl ProtocolStore for SessionKeys {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let devices: Option<Vec<(String, bool)>> = self.get_json(kind::SENDER_KEY_DEVICES, group_jid).await?;
        Ok(devices.unwrap_or_default())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let _merge = self.merges.lock().await;
        let mut devices = self.get_sender_key_devices(group_jid).await?;
        for (device, has_key) in entries {
            match devices.iter_mut().find(|(d, _)| d == device) {
                Some(known) => known.1 = *has_key,
                None => devices.push(((*device).to_owned(), *has_key)),
            }
        }
        self.put(vec![DeviceKey::new(kind::SENDER_KEY_DEVICES, group_jid, encode(&devices)?, 0)]).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete(kind::SENDER_KEY_DEVICES, &[group_jid]).await.map(drop)
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        let _merge = self.merges.lock().await;
        let mut changed = Vec::new();
        for group in self.scan(kind::SENDER_KEY_DEVICES, "").await? {
            let mut devices: Vec<(String, bool)> = decode(&group.value)?;
            let before = devices.len();
            devices.retain(|(d, _)| !device_jids.contains(&d.as_str()));
            if devices.len() != before {
                changed.push(DeviceKey::new(kind::SENDER_KEY_DEVICES, group.key, encode(&devices)?, 0));
            }
        }
        self.put(changed).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.store
            .delete_device_keys_by_prefix(&self.session, kind::SENDER_KEY_DEVICES, "")
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_json(kind::LID, lid).await
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_json(kind::PN, phone).await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        // Indexed both ways: by LID, and by phone number (the most recent LID of a number).
        let mut rows = Vec::with_capacity(entries.len() * 2);
        for entry in entries {
            let value = encode(entry)?;
            rows.push(DeviceKey::new(kind::LID, entry.lid.as_str(), value.clone(), 0));
            rows.push(DeviceKey::new(kind::PN, entry.phone_number.as_str(), value, 0));
        }
        self.put(rows).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.scan(kind::LID, "").await?.iter().map(|k| decode(&k.value)).collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::BASE_KEY, joined(&[address, message_id]), base_key, 0)]).await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(kind::BASE_KEY, &joined(&[address, message_id]))
            .await?
            .is_some_and(|k| k == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete(kind::BASE_KEY, &[&joined(&[address, message_id])]).await.map(drop)
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let rows = records
            .iter()
            .map(|r| Ok(DeviceKey::new(kind::DEVICE_LIST, r.user.as_str(), encode(r)?, 0)))
            .collect::<Result<Vec<_>>>()?;
        self.put(rows).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get_json(kind::DEVICE_LIST, user).await
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete(kind::DEVICE_LIST, &[user]).await.map(drop)
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(kind::GROUP_METADATA, group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::GROUP_METADATA, group_jid, blob, 0)]).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete(kind::GROUP_METADATA, &[group_jid]).await.map(drop)
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get_json(kind::TC_TOKEN, jid).await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        let _merge = self.merges.lock().await;
        self.put(vec![DeviceKey::new(kind::TC_TOKEN, jid, encode(entry)?, 0)]).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.delete(kind::TC_TOKEN, &[jid]).await.map(drop)
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self.scan(kind::TC_TOKEN, "").await?.into_iter().map(|k| k.key).collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        let _merge = self.merges.lock().await;
        let mut expired = Vec::new();
        for row in self.scan(kind::TC_TOKEN, "").await? {
            let entry: TcTokenEntry = decode(&row.value)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            let sender_live = entry.sender_timestamp.is_some_and(|t| t >= sender_cutoff);
            if !token_live && !sender_live {
                expired.push(row.key);
            }
        }
        let keys: Vec<&str> = expired.iter().map(String::as_str).collect();
        Ok(u32::try_from(self.delete(kind::TC_TOKEN, &keys).await?).unwrap_or(u32::MAX))
    }

    async fn touch_tc_token_sender_timestamp(&self, jid: &str, sender_timestamp: i64) -> Result<()> {
        let _merge = self.merges.lock().await;
        let entry = match self.get_tc_token(jid).await? {
            Some(known) => TcTokenEntry {
                sender_timestamp: Some(
                    known.sender_timestamp.map_or(sender_timestamp, |t| t.max(sender_timestamp)),
                ),
                ..known
            },
            None => TcTokenEntry {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        self.put(vec![DeviceKey::new(kind::TC_TOKEN, jid, encode(&entry)?, 0)]).await
    }

    async fn store_received_tc_token(&self, jid: &str, token: &[u8], token_timestamp: i64) -> Result<()> {
        let _merge = self.merges.lock().await;
        let known = self.get_tc_token(jid).await?;
        if known.as_ref().is_some_and(|k| !k.token.is_empty() && token_timestamp < k.token_timestamp) {
            return Ok(());
        }
        let entry = TcTokenEntry {
            token: token.to_vec(),
            token_timestamp,
            sender_timestamp: known.and_then(|k| k.sender_timestamp),
        };
        self.put(vec![DeviceKey::new(kind::TC_TOKEN, jid, encode(&entry)?, 0)]).await
    }

    async fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        self.put(vec![DeviceKey::new(kind::SENT_MESSAGE, joined(&[chat_jid, message_id]), payload, now)])
            .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let key = joined(&[chat_jid, message_id]);
        let taken = self.store.take_device_key(&self.session, kind::SENT_MESSAGE, &key).await.map_err(db)?;
        Ok(taken.map(|k| k.value))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        let deleted = self
            .store
            .expire_device_keys(&self.session, kind::SENT_MESSAGE, cutoff_timestamp)
            .await
            .map_err(db)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }

    async fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> Result<()> {
        self.store_pending_inbound_batch(&[PendingInboundRow { chat, sender, id, message }]).await
    }

    async fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<Option<Vec<u8>>> {
        self.get(kind::PENDING_INBOUND, &joined(&[chat, sender, id])).await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete(kind::PENDING_INBOUND, &[&joined(&[chat, sender, id])]).await.map(drop)
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        let deleted = self
            .store
            .expire_device_keys(&self.session, kind::PENDING_INBOUND, cutoff_timestamp)
            .await
            .map_err(db)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        let rows = rows
            .iter()
            .map(|r| DeviceKey::new(kind::PENDING_INBOUND, joined(&[r.chat, r.sender, r.id]), r.message, now))
            .collect();
        self.put(rows).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        let keys: Vec<String> = keys.iter().map(|k| joined(&[k.chat, k.sender, k.id])).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(kind::PENDING_INBOUND, &keys).await.map(drop)
    }
}

/// A message secret as kept: the number of its row is its expiry (0: never).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSecret {
    secret: Vec<u8>,
    expires_at: i64,
    message_ts: i64,
}

#[async_trait]
impl MsgSecretStore for SessionKeys {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let _merge = self.merges.lock().await;
        let keys: Vec<String> = entries.iter().map(|e| joined(&[&e.chat, &e.sender, &e.msg_id])).collect();
        let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut known: HashMap<String, StoredSecret> = HashMap::new();
        for row in self.store.get_device_keys(&self.session, kind::MSG_SECRET, &asked).await.map_err(db)? {
            known.insert(row.key, decode(&row.value)?);
        }
        let count = entries.len();
        for (entry, key) in entries.into_iter().zip(keys) {
            let merged = match known.remove(&key) {
                Some(old) => StoredSecret {
                    secret: entry.secret.to_vec(),
                    expires_at: merge_msg_secret_expiry(old.expires_at, entry.expires_at),
                    message_ts: merge_msg_secret_message_ts(old.message_ts, entry.message_ts),
                },
                None => StoredSecret {
                    secret: entry.secret.to_vec(),
                    expires_at: entry.expires_at,
                    message_ts: entry.message_ts,
                },
            };
            known.insert(key, merged);
        }
        let rows = known
            .into_iter()
            .map(|(key, s)| Ok(DeviceKey::new(kind::MSG_SECRET, key, encode(&s)?, s.expires_at)))
            .collect::<Result<Vec<_>>>()?;
        self.put(rows).await?;
        Ok(count)
    }

    async fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_msg_secret_with_ts(chat, sender, msg_id).await?.map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        let stored: Option<StoredSecret> =
            self.get_json(kind::MSG_SECRET, &joined(&[chat, sender, msg_id])).await?;
        Ok(stored.map(|s| (s.secret, s.message_ts)))
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // At or before the cutoff; 0 (never) is kept.
        let deleted = self
            .store
            .expire_device_keys(&self.session, kind::MSG_SECRET, cutoff_timestamp.saturating_add(1))
            .await
            .map_err(db)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }
}

#[async_trait]
impl DeviceStore for SessionKeys {
    async fn save(&self, device: &Device) -> Result<()> {
        self.put(vec![DeviceKey::new(kind::DEVICE, "", encode(device)?, 0)]).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get_json(kind::DEVICE, "").await
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self.get(kind::DEVICE, "").await?.is_some())
    }

    async fn create(&self) -> Result<i32> {
        // One device per session: create it if it is not there yet.
        if !self.exists().await? {
            self.save(&Device::new()).await?;
        }
        Ok(1)
    }
}
