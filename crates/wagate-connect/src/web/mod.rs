//! The `web` connector: real WhatsApp accounts linked as a companion device, through
//! whatsapp-rust. Its device keys are kept in wagate's store ([`SessionKeys`]).

mod keys;

pub use keys::SessionKeys;
