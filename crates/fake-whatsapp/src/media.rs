//! Media: the `media_conn` answer that points clients at this server's media
//! host.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::server::FakeServer;
use crate::stanza::{self, iq_result};

pub(crate) fn media_conn(server: &FakeServer, id: &str) -> Node {
    let host = server.media_host();
    iq_result(
        id,
        vec![NodeBuilder::new("media_conn")
            .attr("auth", stanza::new_id())
            .attr("ttl", "300")
            .attr("auth_ttl", "3600")
            .attr("max_buckets", "12")
            .children([NodeBuilder::new("host").attr("hostname", host).attr("type", "primary").build()])
            .build()],
    )
}
