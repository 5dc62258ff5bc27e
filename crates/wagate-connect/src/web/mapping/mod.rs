//! Between whatsapp-rust's types and wagate's: pure functions, tested on constructed values.

mod inbound;
mod outbound;

pub use inbound::*;
pub use outbound::*;
