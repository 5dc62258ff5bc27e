//! Identifiers: user-chosen session ids and sortable message, webhook, event and delivery ids.

use parking_lot::Mutex;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("session id must match [a-z0-9][a-z0-9_-]{{0,63}}")]
    InvalidSessionId,
    #[error("message id must look like msg_<26 characters>")]
    InvalidMessageId,
    #[error("event id must look like evt_<digits>")]
    InvalidEventId,
    #[error("webhook id must look like wh_<26 characters>")]
    InvalidWebhookId,
    #[error("delivery id must look like dlv_<digits>")]
    InvalidDeliveryId,
    #[error("hook id must look like hk_<26 characters>")]
    InvalidHookId,
    #[error("campaign id must look like cmp_<26 characters>")]
    InvalidCampaignId,
    #[error("media id must look like med_<26 characters>")]
    InvalidMediaId,
    #[error("organization id must match [a-z0-9][a-z0-9_-]{{0,63}}")]
    InvalidOrgId,
    #[error("API key id must look like key_<26 characters>")]
    InvalidKeyId,
    #[error("audit entry id must look like aud_<digits>")]
    InvalidAuditId,
}

/// The OpenAPI schema of a type that travels as a string matching `pattern`: the one place
/// the document learns the pattern, so that every field of the type carries it.
macro_rules! string_schema {
    ($name:ident, $pattern:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_schema;

/// What a user-chosen id matches (see [`is_slug`]).
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

string_schema!(SessionId, SLUG_PATTERN);
string_schema!(OrgId, SLUG_PATTERN);

/// Whether `s` is a user-chosen id: `[a-z0-9][a-z0-9_-]{0,63}`.
fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    first_ok && rest_ok && s.len() <= 64
}

/// A session id: chosen by the user (`[a-z0-9][a-z0-9_-]{0,63}`) or generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Validates a user-supplied session id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_slug(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::InvalidSessionId)
        }
    }

    /// A fresh id for a session created without one (`s-` + 10 random characters).
    pub fn generate() -> Self {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        let tail: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        Self(format!("s-{tail}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An organization id: chosen by the admin (`[a-z0-9][a-z0-9_-]{0,63}`, like a session id).
/// Everything that existed before organizations belongs to [`OrgId::DEFAULT`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    /// The organization that every install has, holding what single-tenant users create.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_slug(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::InvalidOrgId)
        }
    }

    /// The `default` organization.
    pub fn default_org() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// One generator for the process keeps ids monotonic even within one millisecond, so that
// listing messages by id is listing them in the order wagate saw them.
static ULIDS: Mutex<Option<ulid::Generator>> = Mutex::new(None);

fn next_ulid() -> ulid::Ulid {
    let mut guard = ULIDS.lock();
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The generator only fails when 2^80 ids are asked for within one millisecond.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// Ids made of a prefix and a ULID, so that they sort by creation time.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $error:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        // A prefix and 26 characters of Crockford's base32, either case (as `ulid` reads them).
        string_schema!($name, concat!("^", $prefix, "[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"));

        impl $name {
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "{}"), next_ulid()))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix($prefix) {
                    Some(tail) if ulid::Ulid::from_string(tail).is_ok() => Ok(Self(s.to_owned())),
                    _ => Err(IdError::$error),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// When the id was made, in milliseconds since the Unix epoch.
            pub fn created_ms(&self) -> u64 {
                self.0
                    .strip_prefix($prefix)
                    .and_then(|tail| ulid::Ulid::from_string(tail).ok())
                    .map_or(0, |ulid| ulid.timestamp_ms())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Ids made of a prefix and a row's position in an append-only table, zero-padded so that
/// they sort as text too.
macro_rules! seq_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $error:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        // Digits that surely fit an i64: up to 18 (16 as shown).
        string_schema!($name, concat!("^", $prefix, "[0-9]{1,18}$"));

        impl $name {
            pub fn from_seq(seq: i64) -> Self {
                Self(seq)
            }

            /// The row's position.
            pub fn seq(self) -> i64 {
                self.0
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                s.strip_prefix($prefix)
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<i64>().ok())
                    .map(Self)
                    .ok_or(IdError::$error)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:016}"), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

ulid_id!(
    /// A message id: `msg_` + a ULID.
    MessageId,
    "msg_",
    InvalidMessageId
);
ulid_id!(
    /// A webhook id: `wh_` + a ULID.
    WebhookId,
    "wh_",
    InvalidWebhookId
);
ulid_id!(
    /// A trigger hook id: `hk_` + a ULID.
    HookId,
    "hk_",
    InvalidHookId
);
ulid_id!(
    /// A media file id: `med_` + a ULID.
    MediaId,
    "med_",
    InvalidMediaId
);
ulid_id!(
    /// A campaign id: `cmp_` + a ULID.
    CampaignId,
    "cmp_",
    InvalidCampaignId
);
ulid_id!(
    /// An API key id: `key_` + a ULID.
    KeyId,
    "key_",
    InvalidKeyId
);
seq_id!(
    /// An event id: `evt_` + the event's position in the log.
    EventId,
    "evt_",
    InvalidEventId
);
seq_id!(
    /// An audit log entry id: `aud_` + its position in the log.
    AuditId,
    "aud_",
    InvalidAuditId
);
seq_id!(
    /// A webhook delivery id: `dlv_` + the delivery's position.
    DeliveryId,
    "dlv_",
    InvalidDeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_follow_the_pattern() {
        assert!(SessionId::parse("sales-1").is_ok());
        assert!(SessionId::parse("0_a").is_ok());
        assert!(SessionId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(SessionId::parse(""), Err(IdError::InvalidSessionId));
        assert_eq!(SessionId::parse("-a"), Err(IdError::InvalidSessionId));
        assert_eq!(SessionId::parse("Sales"), Err(IdError::InvalidSessionId));
        assert_eq!(SessionId::parse("a b"), Err(IdError::InvalidSessionId));
        assert_eq!(SessionId::parse(&"a".repeat(65)), Err(IdError::InvalidSessionId));
        assert!(SessionId::parse(SessionId::generate().as_str()).is_ok());
    }

    #[test]
    fn message_ids_sort_in_creation_order() {
        let ids: Vec<MessageId> = (0..1000).map(|_| MessageId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(MessageId::parse(ids[0].as_str()), Ok(ids[0].clone()));
        assert!(MessageId::parse("msg_nope").is_err());
    }

    #[test]
    fn event_ids_round_trip_and_sort_as_text() {
        let a = EventId::from_seq(9);
        let b = EventId::from_seq(10);
        assert_eq!(a.to_string(), "evt_0000000000000009");
        assert!(a.to_string() < b.to_string());
        assert_eq!(EventId::parse(&b.to_string()), Ok(b));
        assert!(EventId::parse("evt_").is_err());
        assert!(EventId::parse("evt_-1").is_err());
        assert!(EventId::parse("msg_1").is_err());
    }
}
