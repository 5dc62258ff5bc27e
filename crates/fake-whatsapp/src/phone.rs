//! The phone as a Signal sender, for one job: sharing an app-state sync key
//! with a newly linked companion, as a real phone does. Without it the
//! companion waits ~10 s for the key before it reports `Connected`.
//!
//! Each share opens a fresh session from the companion's prekey bundle, so
//! no Signal state is kept between shares.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use wacore::libsignal::protocol::{
    message_encrypt, process_prekey_bundle, DeviceId, Direction, IdentityChange, IdentityKey,
    IdentityKeyPair, IdentityKeyStore, PreKeyBundle, ProtocolAddress, PublicKey, SessionRecord, SessionStore,
    SignalProtocolError, UsePQRatchet,
};
use wacore::messages::MessageUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Jid;
use waproto::buffa::Message;
use waproto::whatsapp as wa;

use crate::router::deliver;
use crate::server::FakeServer;
use crate::stanza;

type SignalResult<T> = std::result::Result<T, SignalProtocolError>;

/// The phone's identity, as the Signal library asks for it.
struct PhoneIdentity {
    pair: IdentityKeyPair,
    registration_id: u32,
}

#[whatsapp_rust::async_trait]
impl IdentityKeyStore for PhoneIdentity {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.pair.clone())
    }

    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(self.registration_id)
    }

    async fn save_identity(&mut self, _: &ProtocolAddress, _: &IdentityKey) -> SignalResult<IdentityChange> {
        Ok(IdentityChange::NewOrUnchanged)
    }

    /// The phone trusts its own companion: it just signed its identity.
    async fn is_trusted_identity(
        &self,
        _: &ProtocolAddress,
        _: &IdentityKey,
        _: Direction,
    ) -> SignalResult<bool> {
        Ok(true)
    }

    async fn get_identity(&self, _: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        Ok(None)
    }
}

/// The session of one share; dropped afterwards.
#[derive(Default)]
struct OneSession(HashMap<String, SessionRecord>);

#[whatsapp_rust::async_trait]
impl SessionStore for OneSession {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        Ok(self.0.get(&address.to_string()).cloned())
    }

    async fn has_session(&self, address: &ProtocolAddress) -> SignalResult<bool> {
        Ok(self.0.contains_key(&address.to_string()))
    }

    async fn store_session(&mut self, address: &ProtocolAddress, record: SessionRecord) -> SignalResult<()> {
        self.0.insert(address.to_string(), record);
        Ok(())
    }
}

fn key_share() -> Vec<u8> {
    let key_id: [u8; 6] = rand::random();
    let key_data: [u8; 32] = rand::random();
    let share = wa::message::AppStateSyncKeyShare {
        keys: vec![wa::message::AppStateSyncKey {
            key_id: wa::message::AppStateSyncKeyId { key_id: Some(key_id.to_vec()) }.into(),
            key_data: wa::message::AppStateSyncKeyData {
                key_data: Some(key_data.to_vec()),
                fingerprint: wa::message::AppStateSyncKeyFingerprint {
                    raw_id: Some(rand::random()),
                    current_index: Some(0),
                    device_indexes: vec![0],
                }
                .into(),
                timestamp: Some(stanza::now_secs() as i64 * 1000),
            }
            .into(),
        }],
    };
    wa::Message {
        protocol_message: wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
            app_state_sync_key_share: share.into(),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Encrypts a key share for companion `device` of `phone` and queues it
/// from device 0. Takes one of the companion's one-time prekeys.
pub(crate) async fn share_app_state_key(server: &FakeServer, phone: &str, device: u16) -> Result<()> {
    let (mut identity, bundle) = {
        let mut state = server.state();
        let account = state.registry.accounts.get_mut(phone).context("no such account")?;
        let identity = PhoneIdentity {
            pair: IdentityKeyPair::new(
                IdentityKey::new(account.phone_keys.identity.public_key),
                account.phone_keys.identity.private_key.clone(),
            ),
            registration_id: account.phone_keys.registration_id,
        };
        let dev = account.devices.get_mut(&device).context("no such device")?;
        let key = |bytes: &[u8]| PublicKey::from_djb_public_key_bytes(bytes).map_err(|e| anyhow!("{e}"));
        let one_time = match dev.prekeys.pop_front() {
            Some((id, public)) => Some((id.into(), key(&public)?)),
            None => None,
        };
        let bundle = PreKeyBundle::new(
            dev.registration_id,
            DeviceId::from(u32::from(device)),
            one_time,
            dev.signed_prekey.id.into(),
            key(&dev.signed_prekey.public)?,
            dev.signed_prekey.signature.clone(),
            IdentityKey::new(key(&dev.identity)?),
        )?;
        (identity, bundle)
    };
    let address = ProtocolAddress::new(phone, DeviceId::from(u32::from(device)));
    let mut session = OneSession::default();
    // A Send rng: the share runs on a spawned task.
    let mut rng = rand::make_rng::<rand::rngs::StdRng>();
    process_prekey_bundle(&address, &mut session, &mut identity, &bundle, &mut rng, UsePQRatchet::No).await?;
    let plaintext = MessageUtils::pad_message_v2(key_share());
    let sealed = message_encrypt(&plaintext, &address, &mut session, &mut identity).await?;

    let mut state = server.state();
    let account = state.registry.accounts.get(phone).context("no such account")?;
    let node = NodeBuilder::new("message")
        .attr("from", Jid::pn(account.phone.as_str()))
        .attr("sender_lid", Jid::lid(account.lid.as_str()))
        .attr("id", stanza::new_id())
        .attr("t", stanza::now_secs().to_string())
        .attr("type", "text")
        .attr("category", "peer")
        .children([NodeBuilder::new("enc")
            .attr("v", "2")
            .attr("type", "pkmsg")
            .bytes(sealed.serialize().to_vec())
            .build()])
        .build();
    deliver(&mut state, phone, device, node);
    Ok(())
}
