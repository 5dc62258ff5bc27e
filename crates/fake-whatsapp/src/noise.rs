//! The server side of WhatsApp's Noise handshakes (XX, IK and XXfallback) and
//! the transport cipher that follows them.
//!
//! wacore ships only the initiator state machines; the symmetric state
//! (`NoiseHandshake`) is reused here and driven in responder order.

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};
use wacore::libsignal::protocol::{KeyPair, PrivateKey};
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER};
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::buffa::{Message, MessageField};
use waproto::whatsapp as wa;

/// Which handshake a connection ended up using; tests read it to prove that a
/// reconnect resumed with IK instead of a full XX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    Xx,
    Ik,
    XxFallback,
}

/// The server's static Noise key and the certificate chain that names it.
pub(crate) struct ServerKey {
    keypair: KeyPair,
    public: [u8; 32],
    cert_chain: Vec<u8>,
}

impl ServerKey {
    /// Derives the key from a seed, so a restarted server keeps the static key
    /// its clients cached and their IK resumption keeps working.
    pub(crate) fn from_seed(seed: &str) -> Result<Self> {
        let digest = Sha256::digest(format!("fake-whatsapp noise static key\0{seed}"));
        let private = PrivateKey::deserialize(&digest).map_err(|e| anyhow!("{e}"))?;
        let keypair = KeyPair::try_from(private).map_err(|e| anyhow!("{e}"))?;
        let public: [u8; 32] = keypair
            .public_key
            .public_key_bytes()
            .try_into()
            .context("curve25519 public key is not 32 bytes")?;
        // Zero-signed: clients built with `danger-skip-cert-chain-verify` check
        // everything in the chain except the two signatures.
        let cert_chain = wacore_noise::test_util::build_cert_chain_bytes(&public);
        Ok(Self { keypair, public, cert_chain })
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        self.public
    }

    fn private_bytes(&self) -> &[u8] {
        self.keypair.private_key.serialize()
    }
}

/// One direction of the encrypted transport: an AES-GCM key and its counter.
pub(crate) struct Half {
    cipher: NoiseCipher,
    counter: u32,
}

impl Half {
    fn new(cipher: NoiseCipher) -> Self {
        Self { cipher, counter: 0 }
    }

    pub(crate) fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let out = self.cipher.encrypt_with_counter(self.counter, plaintext)?;
        self.counter = self.counter.wrapping_add(1);
        Ok(out)
    }

    pub(crate) fn open(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut buf = ciphertext.to_vec();
        self.cipher.decrypt_in_place_with_counter(self.counter, &mut buf)?;
        self.counter = self.counter.wrapping_add(1);
        Ok(buf)
    }
}

/// The encrypted transport after a handshake.
pub(crate) struct Transport {
    pub write: Half,
    pub read: Half,
}

impl Transport {
    /// `finish()` names its keys from the initiator's side; the responder
    /// reads with the initiator's write key.
    fn responder(noise: NoiseHandshake) -> Result<Self> {
        let (initiator_write, initiator_read) = noise.finish()?;
        Ok(Self { write: Half::new(initiator_read), read: Half::new(initiator_write) })
    }
}

/// What the client proved and sent by the end of the handshake.
pub(crate) struct Established {
    pub transport: Transport,
    pub client_static: [u8; 32],
    /// The encoded `ClientPayload`.
    pub payload: Vec<u8>,
    pub pattern: Pattern,
}

/// The server's answer to a ClientHello.
pub(crate) enum HelloReply {
    /// IK accepted: send `reply`, the transport is ready.
    Ready { reply: Vec<u8>, established: Established },
    /// XX or XXfallback: send `reply`, then wait for the ClientFinish.
    AwaitFinish { reply: Vec<u8>, pending: PendingFinish },
}

pub(crate) struct PendingFinish {
    noise: NoiseHandshake,
    ephemeral: KeyPair,
    pattern: Pattern,
}

fn ephemeral() -> KeyPair {
    KeyPair::generate(&mut rand::rng())
}

fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| anyhow!("{what} is {} bytes, not 32", bytes.len()))
}

fn server_hello(ephemeral: &[u8], static_: Option<Vec<u8>>, payload: Vec<u8>) -> Vec<u8> {
    wa::HandshakeMessage {
        server_hello: MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(ephemeral.to_vec()),
            r#static: static_,
            payload: Some(payload),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Answers a ClientHello: IK when it carries an encrypted static we can open,
/// XXfallback when it carries one we cannot, XX otherwise.
pub(crate) fn respond_to_hello(key: &ServerKey, hello: &[u8]) -> Result<HelloReply> {
    let msg = wa::HandshakeMessage::decode_from_slice(hello).context("ClientHello")?;
    let hello = msg.client_hello.into_option().context("no client_hello")?;
    let client_eph = key32(hello.ephemeral.as_deref().unwrap_or_default(), "client ephemeral")?;
    if let (Some(enc_static), Some(enc_payload)) = (hello.r#static, hello.payload) {
        match try_ik(key, &client_eph, &enc_static, &enc_payload) {
            Ok(reply) => return Ok(reply),
            Err(e) => {
                tracing::debug!(error = %e, "IK hello not for our static key; answering XXfallback");
                return xx_hello(key, client_eph, NOISE_PATTERN_XXFALLBACK, Pattern::XxFallback);
            }
        }
    }
    xx_hello(key, client_eph, NOISE_PATTERN_XX, Pattern::Xx)
}

fn xx_hello(key: &ServerKey, client_eph: [u8; 32], protocol: &str, pattern: Pattern) -> Result<HelloReply> {
    let mut noise = NoiseHandshake::new(protocol, &WA_CONN_HEADER)?;
    noise.authenticate(&client_eph);
    let eph = ephemeral();
    let eph_pub = eph.public_key.public_key_bytes().to_vec();
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(eph.private_key.serialize(), &client_eph)?;
    let enc_static = noise.encrypt(&key.public)?;
    noise.mix_shared_secret(key.private_bytes(), &client_eph)?;
    let enc_cert = noise.encrypt(&key.cert_chain)?;
    let reply = server_hello(&eph_pub, Some(enc_static), enc_cert);
    Ok(HelloReply::AwaitFinish { reply, pending: PendingFinish { noise, ephemeral: eph, pattern } })
}

fn try_ik(
    key: &ServerKey,
    client_eph: &[u8; 32],
    enc_static: &[u8],
    enc_payload: &[u8],
) -> Result<HelloReply> {
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
    noise.authenticate(&key.public);
    noise.authenticate(client_eph);
    noise.mix_shared_secret(key.private_bytes(), client_eph)?;
    let client_static = key32(&noise.decrypt(enc_static)?, "client static")?;
    noise.mix_shared_secret(key.private_bytes(), &client_static)?;
    let payload = noise.decrypt(enc_payload)?;
    let eph = ephemeral();
    let eph_pub = eph.public_key.public_key_bytes().to_vec();
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(eph.private_key.serialize(), client_eph)?;
    noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
    let enc_cert = noise.encrypt(&key.cert_chain)?;
    let reply = server_hello(&eph_pub, None, enc_cert);
    let transport = Transport::responder(noise)?;
    Ok(HelloReply::Ready {
        reply,
        established: Established { transport, client_static, payload, pattern: Pattern::Ik },
    })
}

impl PendingFinish {
    pub(crate) fn finish(mut self, client_finish: &[u8]) -> Result<Established> {
        let msg = wa::HandshakeMessage::decode_from_slice(client_finish).context("ClientFinish")?;
        let finish = msg.client_finish.into_option().context("no client_finish")?;
        let enc_static = finish.r#static.context("ClientFinish without static")?;
        let enc_payload = finish.payload.context("ClientFinish without payload")?;
        let client_static = key32(&self.noise.decrypt(&enc_static)?, "client static")?;
        self.noise.mix_shared_secret(self.ephemeral.private_key.serialize(), &client_static)?;
        let payload = self.noise.decrypt(&enc_payload)?;
        let transport = Transport::responder(self.noise)?;
        Ok(Established { transport, client_static, payload, pattern: self.pattern })
    }
}

#[cfg(test)]
mod tests {
    //! The responder against wacore's own initiator state machines.

    use super::*;
    use wacore_noise::{IkHandshakeState, IkServerHelloOutcome, XxFallbackHandshakeState, XxHandshakeState};

    fn keypair() -> KeyPair {
        KeyPair::generate(&mut rand::rng())
    }

    fn pub32(kp: &KeyPair) -> [u8; 32] {
        kp.public_key.public_key_bytes().try_into().expect("32 bytes")
    }

    /// Both directions of the transport decrypt what the other side sealed.
    fn assert_transport(server: &mut Transport, client_write: &NoiseCipher, client_read: &NoiseCipher) {
        let sealed = client_write.encrypt_with_counter(0, b"from the client").expect("seal");
        assert_eq!(server.read.open(&sealed).expect("open"), b"from the client");
        let sealed = server.write.seal(b"from the server").expect("seal");
        let mut buf = sealed.clone();
        client_read.decrypt_in_place_with_counter(0, &mut buf).expect("open");
        assert_eq!(buf, b"from the server");
    }

    #[test]
    fn xx_completes_and_carries_the_payload() {
        let key = ServerKey::from_seed("test").expect("key");
        let client_static = keypair();
        let mut client = XxHandshakeState::new(client_static.clone(), b"payload".to_vec(), &WA_CONN_HEADER)
            .expect("client");
        let HelloReply::AwaitFinish { reply, pending } =
            respond_to_hello(&key, &client.build_client_hello().expect("hello")).expect("reply")
        else {
            panic!("XX must wait for the client finish");
        };
        let finish = client.read_server_hello_and_build_client_finish(&reply).expect("client accepts");
        let mut established = pending.finish(&finish).expect("server finishes");
        let outcome = client.finish().expect("client finishes");
        assert_eq!(established.pattern, Pattern::Xx);
        assert_eq!(established.payload, b"payload");
        assert_eq!(established.client_static, pub32(&client_static));
        assert_eq!(outcome.server_cert_chain.leaf_key, key.public(), "the chain names our static key");
        assert_transport(&mut established.transport, &outcome.write_cipher, &outcome.read_cipher);
    }

    #[test]
    fn ik_resumes_in_one_round_trip() {
        let key = ServerKey::from_seed("test").expect("key");
        let client_static = keypair();
        let mut client =
            IkHandshakeState::new(client_static.clone(), key.public(), b"login".to_vec(), &WA_CONN_HEADER)
                .expect("client");
        let HelloReply::Ready { reply, mut established } =
            respond_to_hello(&key, &client.build_client_hello().expect("hello")).expect("reply")
        else {
            panic!("IK with our static key is accepted at once");
        };
        let IkServerHelloOutcome::Continue(outcome) =
            client.read_server_hello(&reply).expect("client accepts")
        else {
            panic!("no fallback expected");
        };
        assert_eq!(established.pattern, Pattern::Ik);
        assert_eq!(established.payload, b"login");
        assert_eq!(established.client_static, pub32(&client_static));
        assert_transport(&mut established.transport, &outcome.write_cipher, &outcome.read_cipher);
    }

    #[test]
    fn ik_for_another_static_key_falls_back_to_xx() {
        let key = ServerKey::from_seed("test").expect("key");
        let stale = ServerKey::from_seed("an older server").expect("key");
        let client_static = keypair();
        let mut client =
            IkHandshakeState::new(client_static.clone(), stale.public(), b"login".to_vec(), &WA_CONN_HEADER)
                .expect("client");
        let HelloReply::AwaitFinish { reply, pending } =
            respond_to_hello(&key, &client.build_client_hello().expect("hello")).expect("reply")
        else {
            panic!("an IK hello we cannot open gets XXfallback");
        };
        let IkServerHelloOutcome::Fallback(inputs) = client.read_server_hello(&reply).expect("client reads")
        else {
            panic!("the client must see the fallback");
        };
        let mut fallback =
            XxFallbackHandshakeState::from_ik_failure(*inputs, &WA_CONN_HEADER).expect("fallback");
        let finish = fallback.build_client_finish().expect("client finish");
        let mut established = pending.finish(&finish).expect("server finishes");
        let outcome = fallback.finish().expect("client finishes");
        assert_eq!(established.pattern, Pattern::XxFallback);
        assert_eq!(established.payload, b"login");
        assert_transport(&mut established.transport, &outcome.write_cipher, &outcome.read_cipher);
    }

    #[test]
    fn the_static_key_follows_the_seed() {
        let a = ServerKey::from_seed("one").expect("key");
        assert_eq!(a.public(), ServerKey::from_seed("one").expect("key").public());
        assert_ne!(a.public(), ServerKey::from_seed("two").expect("key").public());
    }
}
