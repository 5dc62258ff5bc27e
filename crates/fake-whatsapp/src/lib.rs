//! A local, protocol-level fake WhatsApp server for tests and local
//! development. Real, unmodified whatsapp-rust clients pair with it by QR
//! code, log in over Noise, and exchange end-to-end-encrypted messages
//! through it; the server routes the opaque ciphertexts and never decrypts.
//!
//! It is not WhatsApp: it signs its Noise certificate chain with no real
//! key, so only clients built with whatsapp-rust's
//! `danger-skip-cert-chain-verify` feature accept it.

mod accounts;
pub mod companion;
mod conn;
pub mod contacts;
pub mod control;
mod devices;
mod dispatch;
mod iq;
pub mod lifecycle;
mod login;
mod media;
mod noise;
pub mod pair_code;
pub mod pairing;
mod phone;
mod prekeys;
mod router;
mod server;
mod stanza;
mod wire;

pub use noise::Pattern;
pub use server::{Config, FakeServer, Running, Unhandled};
