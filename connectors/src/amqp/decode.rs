//! A delivery into envelopes: one canonical record (`json`, `protobuf`), or a partner's own
//! payload read by the connector's mapping profile (`format = <profile>`), as its
//! `content_type` property says (JSON when it has none).

use crate::profile::Profile;
use std::sync::Arc;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::Inbound;
use trainhub_proto::Format;

/// How a connector's messages encode their records (`format` in its configuration).
#[derive(Debug, Clone)]
pub enum Decoding {
    /// One canonical `trainhub.v1.Record` per message (`json` or `protobuf`).
    Canonical(Format),
    /// A partner's own payload per message, normalised by a mapping profile (`format` names
    /// the profile): a JSON object or array unless the message's `content_type` says CSV, JSON
    /// lines or XML. One message may map to several records.
    Profile(Arc<Profile>),
}

impl Decoding {
    /// The envelopes one message holds; a message that cannot be read is one rejected
    /// envelope that keeps its bytes and `headers` (a JSON object) for the dead letter.
    pub fn decode(
        &self,
        system: &str,
        keyer: &PersonKeyer,
        content_type: Option<&str>,
        payload: Vec<u8>,
        headers: String,
    ) -> Vec<Inbound> {
        match self {
            Decoding::Canonical(format) => vec![Inbound::decode(payload, *format, headers)],
            Decoding::Profile(profile) => crate::native::inbound_of_message(
                profile,
                system,
                keyer,
                content_type,
                payload,
                &headers,
            ),
        }
    }
}
