//! Sends each stanza a client writes to the handler for its kind.

use wacore_binary::Node;

use crate::conn::Conn;
use crate::server::FakeServer;

pub(crate) fn handle(server: &FakeServer, conn: &Conn, node: Node) {
    match node.tag.as_ref() {
        "iq" => crate::iq::handle(server, conn, node),
        "message" => crate::router::message(server, conn, node),
        "receipt" => crate::router::receipt(server, conn, node),
        "ack" => crate::router::ack(server, conn, &node),
        "presence" => crate::router::presence(server, conn, &node),
        // Typing and the unified-session ping need no answer here.
        "chatstate" | "ib" => {}
        _ => server.state().record_unhandled(&conn.label(), &node),
    }
}
