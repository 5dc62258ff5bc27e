//! Linking a companion as its phone would: scanning the QR code, signing the
//! companion's identity (ADV), sending `pair-success`, and registering the
//! device once it answers with its own signature.

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;
use waproto::buffa::Message;
use waproto::whatsapp as wa;

use crate::accounts::Device;
use crate::conn::Conn;
use crate::server::{AwaitingSign, FakeServer, State};
use crate::stanza::{self, SERVER};

/// Signature prefix of an E2EE account signing a companion (`[6, 0]`).
const ACCOUNT_SIGNATURE_PREFIX: &[u8] = &[6, 0];

/// Pause between the companion's pair-device-sign and the 515 restart.
const RESTART_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Serialize)]
pub struct Linked {
    pub phone: String,
    pub device: u16,
    pub jid: String,
    pub lid: String,
}

struct Qr {
    reference: String,
    noise_key: Vec<u8>,
    identity: Vec<u8>,
    adv_secret: Vec<u8>,
}

/// `ref,noise,identity,adv_secret[,client_type]`. wacore's parser drops the
/// ADV secret, which the phone needs for the HMAC.
fn parse_qr(qr: &str) -> Result<Qr> {
    let fields: Vec<&str> = qr.trim().split(',').collect();
    if fields.len() < 4 {
        bail!("a QR code has at least 4 comma-separated fields");
    }
    let decode = |i: usize, what: &str| STANDARD.decode(fields[i]).with_context(|| format!("QR {what}"));
    Ok(Qr {
        reference: fields[0].to_owned(),
        noise_key: decode(1, "noise key")?,
        identity: decode(2, "identity key")?,
        adv_secret: decode(3, "adv secret")?,
    })
}

/// The phone of `phone` (created if new) scans `qr`: on success the
/// companion has been sent `pair-success`.
pub fn scan(server: &FakeServer, qr: &str, phone: &str) -> Result<Linked> {
    check_phone(phone)?;
    let qr = parse_qr(qr)?;
    let mut state = server.state();
    let conn = *state.refs.get(&qr.reference).ok_or_else(|| anyhow!("no companion shows this QR code"))?;
    let pending = state.pending.get(&conn).ok_or_else(|| anyhow!("the companion has gone"))?;
    if pending.registration.noise_key[..] != qr.noise_key[..] || pending.registration.identity != qr.identity
    {
        bail!("the QR code's keys are not the companion's");
    }
    link(&mut state, conn, phone, &qr.adv_secret)
}

pub(crate) fn check_phone(phone: &str) -> Result<()> {
    if phone.is_empty() || !phone.bytes().all(|b| b.is_ascii_digit()) {
        bail!("phone must be digits only");
    }
    Ok(())
}

/// The phone of `phone` (created if new) accepts the pairing companion on
/// connection `conn`: it signs the companion's identity, keyed by the ADV
/// secret both sides share, and sends `pair-success`.
pub(crate) fn link(state: &mut State, conn: u64, phone: &str, adv_secret: &[u8]) -> Result<Linked> {
    let pending = state.pending.get(&conn).ok_or_else(|| anyhow!("the companion has gone"))?;
    let outbox = pending.outbox.clone();
    let registration = pending.registration.clone();

    let account = state.registry.get_or_create(phone)?;
    if account.name.is_none() {
        account.name = registration.push_name.clone();
    }
    let device = account.next_device;
    account.next_device += 1;
    let key_index = account.next_key_index;
    account.next_key_index += 1;
    let container = sign_companion(account, &registration.identity, adv_secret, key_index)?;
    let (pn, lid) = (account.pn_jid(device), account.lid_jid(device));
    let linked = Linked { phone: phone.to_owned(), device, jid: pn.to_string(), lid: lid.to_string() };

    let id = stanza::new_id();
    state
        .awaiting_sign
        .insert(id.clone(), AwaitingSign { conn, phone: phone.to_owned(), device, key_index, registration });
    // Linked: the companion's QR codes are spent.
    state.refs.retain(|_, c| *c != conn);

    outbox.send(
        NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", id)
            .attr("xmlns", "md")
            .children([NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device").attr("jid", pn).attr("lid", lid).build(),
                    NodeBuilder::new("device-identity")
                        .attr("key-index", key_index.to_string())
                        .bytes(container)
                        .build(),
                    NodeBuilder::new("platform").attr("name", "android").build(),
                ])
                .build()])
            .build(),
    );
    Ok(linked)
}

/// The `ADVSignedDeviceIdentityHMAC` a phone sends its new companion.
fn sign_companion(
    account: &crate::accounts::Account,
    companion_identity: &[u8],
    adv_secret: &[u8],
    key_index: u32,
) -> Result<Vec<u8>> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(account.phone_keys.raw_id),
        timestamp: Some(stanza::now_secs()),
        key_index: Some(key_index),
        account_type: Some(wa::ADVEncryptionType::E2EE),
        device_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut to_sign = ACCOUNT_SIGNATURE_PREFIX.to_vec();
    to_sign.extend_from_slice(&details);
    to_sign.extend_from_slice(companion_identity);
    let signature = account
        .phone_keys
        .identity
        .private_key
        .calculate_signature(&to_sign, &mut rand::rng())
        .map_err(|e| anyhow!("{e}"))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.phone_keys.identity_public()),
        account_signature: Some(signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = Hmac::<Sha256>::new_from_slice(adv_secret).map_err(|e| anyhow!("{e}"))?;
    mac.update(&signed);
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

/// The companion's answer to `pair-success`: keep its signed identity,
/// register the device, and end the stream with 515 so it logs in.
pub(crate) fn on_result(server: &FakeServer, conn: &Conn, iq: &Node) -> bool {
    let Some(id) = stanza::attr(iq, "id") else { return false };
    let mut state = server.state();
    let Some(awaiting) = state.awaiting_sign.remove(&id) else { return false };
    if awaiting.conn != conn.outbox.id {
        return false;
    }
    let identity = stanza::child(iq, "pair-device-sign")
        .and_then(|s| stanza::child_bytes(s, "device-identity"))
        .map(<[u8]>::to_vec);
    let Some(identity) = identity else {
        tracing::warn!(phone = awaiting.phone, stanza = %stanza::render(iq), "companion refused pair-success");
        return true;
    };
    if let Some(account) = state.registry.accounts.get_mut(&awaiting.phone) {
        let device = Device::new(awaiting.device, awaiting.key_index, awaiting.registration, identity);
        account.devices.insert(awaiting.device, device);
        crate::devices::announce(&mut state, &awaiting.phone, awaiting.device, crate::devices::Change::Added);
    }
    state.pending.remove(&conn.outbox.id);
    drop(state);
    // The client marks its disconnect as expected only after it has sent
    // pair-device-sign; a 515 that beats that makes it drop its next login.
    let outbox = conn.outbox.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RESTART_DELAY).await;
        outbox.send(NodeBuilder::new("stream:error").attr("code", "515").build());
        outbox.close();
    });
    true
}
