//! Linking by pairing code, the phone's side: the companion registers a
//! code-wrapped ephemeral key (`companion_hello`), the phone "types" the code
//! (`POST /control/pair`) and answers with its own (`primary_hello`), the
//! companion sends its key bundle (`companion_finish`), and both derive the
//! ADV secret the `pair-success` is keyed with.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::oneshot;
use wacore::crypto::hkdf_sha256_into;
use wacore::libsignal::crypto::aes_256_gcm_decrypt;
use wacore::libsignal::protocol::{KeyPair, PublicKey};
use wacore::pair_code::PairCodeUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::conn::Conn;
use crate::pairing::{self, Linked};
use crate::server::FakeServer;
use crate::stanza::{self, attr, child, child_bytes, iq_error, iq_result, SERVER};

/// How long `POST /control/pair` waits for the companion to finish.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// A companion that asked for a pairing code for a phone number.
pub(crate) struct CodeRequest {
    pub conn: u64,
    reference: String,
    wrapped_companion_ephemeral: Vec<u8>,
}

/// The phone answered; waiting for the companion's key bundle.
pub(crate) struct AwaitingFinish {
    conn: u64,
    phone: String,
    phone_ephemeral: KeyPair,
    companion_ephemeral: [u8; 32],
    done: oneshot::Sender<Result<Linked>>,
}

/// `<iq xmlns="md"><link_code_companion_reg stage=…>` from a pairing companion.
pub(crate) fn handle(server: &FakeServer, conn: &Conn, iq: &Node, id: &str) -> Node {
    let Some(reg) = child(iq, "link_code_companion_reg") else { return iq_error(id, 400, "bad-request") };
    match attr(reg, "stage").as_deref() {
        Some("companion_hello") => companion_hello(server, conn, reg, id),
        Some("companion_finish") => companion_finish(server, conn, reg, id),
        _ => {
            server.state().record_unhandled(&conn.label(), iq);
            iq_error(id, 400, "bad-request")
        }
    }
}

fn companion_hello(server: &FakeServer, conn: &Conn, reg: &Node, id: &str) -> Node {
    let phone = stanza::jid_attr(reg, "jid").map(|j| j.user.to_string()).unwrap_or_default();
    let Some(wrapped) = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub") else {
        return iq_error(id, 400, "bad-request");
    };
    if pairing::check_phone(&phone).is_err() || wrapped.len() != 80 {
        return iq_error(id, 400, "bad-request");
    }
    let reference = format!("3@{}", stanza::new_id());
    let request = CodeRequest {
        conn: conn.outbox.id,
        reference: reference.clone(),
        wrapped_companion_ephemeral: wrapped.to_vec(),
    };
    server.state().code_requests.insert(phone, request);
    iq_result(
        id,
        vec![NodeBuilder::new("link_code_companion_reg")
            .children([stanza::bytes_node("link_code_pairing_ref", reference.into_bytes())])
            .build()],
    )
}

/// The phone of `phone` types `code`: returns once `pair-success` is sent.
pub async fn enter(server: &FakeServer, code: &str, phone: &str) -> Result<Linked> {
    pairing::check_phone(phone)?;
    let code = code.trim().replace('-', "").to_uppercase();
    if !PairCodeUtils::validate_code(&code) {
        bail!("{code:?} is not a pairing code");
    }
    let request = server
        .state()
        .code_requests
        .remove(phone)
        .ok_or_else(|| anyhow!("no companion waits for a pairing code for {phone}"))?;
    let phone_ephemeral = KeyPair::generate(&mut rand::rng());
    let phone_ephemeral_pub: [u8; 32] = phone_ephemeral.public_key.public_key_bytes().try_into()?;
    // PBKDF2 with 131072 rounds, twice: off the async threads.
    let (companion_ephemeral, wrapped_primary) = tokio::task::spawn_blocking({
        let code = code.clone();
        move || -> Result<([u8; 32], [u8; 80])> {
            let companion =
                PairCodeUtils::decrypt_primary_ephemeral_pub(&request.wrapped_companion_ephemeral, &code)
                    .map_err(|e| anyhow!("{e}"))?;
            Ok((companion, PairCodeUtils::encrypt_ephemeral_pub(&phone_ephemeral_pub, &code)))
        }
    })
    .await??;

    let (tx, rx) = oneshot::channel();
    {
        let mut state = server.state();
        let identity = state.registry.get_or_create(phone)?.phone_keys.identity_public();
        let outbox = state.pending.get(&request.conn).map(|p| p.outbox.clone());
        let outbox = outbox.ok_or_else(|| anyhow!("the companion has gone"))?;
        state.awaiting_finish.insert(
            request.reference.clone(),
            AwaitingFinish {
                conn: request.conn,
                phone: phone.to_owned(),
                phone_ephemeral,
                companion_ephemeral,
                done: tx,
            },
        );
        outbox.send(primary_hello(&request.reference, &wrapped_primary, &identity));
    }
    tokio::time::timeout(FINISH_TIMEOUT, rx)
        .await
        .map_err(|_| anyhow!("the companion did not finish pairing in time"))?
        .map_err(|_| anyhow!("the pairing was abandoned"))?
}

fn primary_hello(reference: &str, wrapped_primary: &[u8], identity: &[u8]) -> Node {
    NodeBuilder::new("notification")
        .attr("from", SERVER)
        .attr("id", stanza::new_id())
        .attr("t", stanza::now_secs().to_string())
        .attr("type", "link_code_companion_reg")
        .children([NodeBuilder::new("link_code_companion_reg")
            .attr("stage", "primary_hello")
            .children([
                stanza::bytes_node(
                    "link_code_pairing_wrapped_primary_ephemeral_pub",
                    wrapped_primary.to_vec(),
                ),
                stanza::bytes_node("primary_identity_pub", identity.to_vec()),
                stanza::bytes_node("link_code_pairing_ref", reference.as_bytes().to_vec()),
            ])
            .build()])
        .build()
}

fn companion_finish(server: &FakeServer, conn: &Conn, reg: &Node, id: &str) -> Node {
    let reference =
        child_bytes(reg, "link_code_pairing_ref").map(|r| String::from_utf8_lossy(r).into_owned());
    let mut state = server.state();
    let Some(awaiting) = reference.and_then(|r| state.awaiting_finish.remove(&r)) else {
        return iq_error(id, 404, "item-not-found");
    };
    if awaiting.conn != conn.outbox.id {
        return iq_error(id, 403, "forbidden");
    }
    let result = (|| {
        let account = state.registry.accounts.get(&awaiting.phone).context("account vanished")?;
        let adv_secret = adv_secret(&awaiting, reg, &account.phone_keys.identity)?;
        pairing::link(&mut state, awaiting.conn, &awaiting.phone, &adv_secret)
    })();
    let reply = match &result {
        Ok(_) => iq_result(id, vec![]),
        Err(e) => {
            tracing::info!(error = %e, "pairing code bundle refused");
            iq_error(id, 400, "bad-request")
        }
    };
    drop(state);
    let _ = awaiting.done.send(result);
    reply
}

/// Opens the companion's key bundle and derives the ADV secret from both
/// key agreements and the companion's random bytes.
fn adv_secret(awaiting: &AwaitingFinish, reg: &Node, phone_identity: &KeyPair) -> Result<[u8; 32]> {
    let wrapped = child_bytes(reg, "link_code_pairing_wrapped_key_bundle").context("no key bundle")?;
    let companion_identity =
        child_bytes(reg, "companion_identity_public").context("no companion identity")?;
    if wrapped.len() < 32 + 12 + 16 {
        bail!("key bundle too short");
    }
    let companion_eph = PublicKey::from_djb_public_key_bytes(&awaiting.companion_ephemeral)?;
    let eph_shared = awaiting.phone_ephemeral.private_key.calculate_agreement(&companion_eph)?;
    let (salt, rest) = wrapped.split_at(32);
    let (iv, sealed) = rest.split_at(12);
    let mut key = [0u8; 32];
    hkdf_sha256_into(&eph_shared, Some(salt), b"link_code_pairing_key_bundle_encryption_key", &mut key)
        .map_err(|e| anyhow!("{e:?}"))?;
    let iv: [u8; 12] = iv.try_into()?;
    let mut bundle = Vec::new();
    aes_256_gcm_decrypt(&key, &iv, b"", sealed, &mut bundle)
        .map_err(|_| anyhow!("the key bundle does not open: wrong pairing code?"))?;
    if bundle.len() != 96 {
        bail!("key bundle is {} bytes, not 96", bundle.len());
    }
    let phone_identity_pub = phone_identity.public_key.public_key_bytes();
    if bundle[..32] != *companion_identity || bundle[32..64] != *phone_identity_pub {
        bail!("the key bundle names other identities");
    }
    let identity_shared = phone_identity
        .private_key
        .calculate_agreement(&PublicKey::from_djb_public_key_bytes(companion_identity)?)?;
    let mut secret_input = Vec::with_capacity(96);
    secret_input.extend_from_slice(&eph_shared);
    secret_input.extend_from_slice(&identity_shared);
    secret_input.extend_from_slice(&bundle[64..96]);
    let mut adv_secret = [0u8; 32];
    hkdf_sha256_into(&secret_input, None, b"adv_secret", &mut adv_secret).map_err(|e| anyhow!("{e:?}"))?;
    Ok(adv_secret)
}
