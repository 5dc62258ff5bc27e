//! Phone numbers and WhatsApp JIDs, normalised at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::string_schema;

// The patterns of the OpenAPI document, built from one description of a phone number as
// `PhoneNumber::parse` reads it: what `trim` drops around it, an optional leading `+`, then 7
// to 15 digits (the first not 0) among spaces, '-', '.', '(' and ')'.
macro_rules! blank {
    () => {
        "[ \\t\\n\\r]*"
    };
}
macro_rules! digits {
    () => {
        "\\+?[ ().-]*[1-9](?:[ ().-]*[0-9]){6,14}[ ().-]*"
    };
}
macro_rules! jid {
    () => {
        concat!(
            "(?:",
            digits!(),
            "(?::[^@]*)?@(?:s\\.whatsapp\\.net|c\\.us)|[0-9-]+(?::[^@]*)?@(?:g\\.us|lid))"
        )
    };
}

string_schema!(PhoneNumber, concat!("^", blank!(), digits!(), blank!(), "$"));
string_schema!(Jid, concat!("^", blank!(), jid!(), blank!(), "$"));
string_schema!(Recipient, concat!("^", blank!(), "(?:", digits!(), "|", jid!(), ")", blank!(), "$"));

/// Why a string is not a phone number or JID wagate can send to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("a phone number may only contain digits, spaces, '+', '-', '.', '(' and ')'")]
    InvalidCharacters,
    #[error("a phone number in international format has 7 to 15 digits, country code first")]
    InvalidLength,
    #[error("a phone number starts with its country code, which never starts with 0")]
    LeadingZero,
    #[error("unknown JID server '{0}'")]
    UnknownServer(String),
    #[error("a JID needs a user part before '@'")]
    EmptyUser,
}

/// A phone number in E.164 form, stored as digits only (`15551234567`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises `+1 (555) 123-4567` and the like to `15551234567`.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let mut digits = String::with_capacity(input.len());
        for (i, c) in input.trim().chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneError::InvalidCharacters),
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(PhoneError::InvalidLength);
        }
        if digits.starts_with('0') {
            return Err(PhoneError::LeadingZero);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JID of this number's WhatsApp account.
    pub fn to_jid(&self) -> Jid {
        Jid { user: self.0.clone(), server: Server::User }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Server {
    User,
    Group,
    Lid,
}

impl Server {
    fn as_str(self) -> &'static str {
        match self {
            Server::User => "s.whatsapp.net",
            Server::Group => "g.us",
            Server::Lid => "lid",
        }
    }
}

/// A WhatsApp address: a user (`15551234567@s.whatsapp.net`), a group (`…@g.us`) or a LID (`…@lid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    user: String,
    server: Server,
}

impl Jid {
    /// Parses a full JID (`user@server`).
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let (user, server) = input.trim().split_once('@').ok_or(PhoneError::EmptyUser)?;
        // Device suffixes (`:12`) address one linked device; wagate addresses accounts.
        let user = user.split(':').next().unwrap_or_default();
        if user.is_empty() {
            return Err(PhoneError::EmptyUser);
        }
        let server = match server {
            "s.whatsapp.net" | "c.us" => Server::User,
            "g.us" => Server::Group,
            "lid" => Server::Lid,
            other => return Err(PhoneError::UnknownServer(other.to_owned())),
        };
        if server == Server::User {
            return Ok(PhoneNumber::parse(user)?.to_jid());
        }
        if !user.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return Err(PhoneError::InvalidCharacters);
        }
        Ok(Self { user: user.to_owned(), server })
    }

    /// Parses what a caller puts in `to`: a phone number in any common format, or a JID.
    pub fn parse_recipient(input: &str) -> Result<Self, PhoneError> {
        if input.contains('@') {
            Self::parse(input)
        } else {
            Ok(PhoneNumber::parse(input)?.to_jid())
        }
    }

    /// The phone number, for user JIDs.
    pub fn phone(&self) -> Option<PhoneNumber> {
        (self.server == Server::User).then(|| PhoneNumber(self.user.clone()))
    }

    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.server.as_str())
    }
}

impl Serialize for Jid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Jid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a caller puts in `to`: a phone number in any common format, or a JID; read with
/// [`Jid::parse_recipient`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient(pub Jid);

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Jid::parse_recipient(&s).map(Self).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised() {
        for input in ["15551234567", "+1 555 123 4567", "+1 (555) 123-4567", " 1.555.123.4567 "] {
            assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), "15551234567", "{input}");
        }
    }

    #[test]
    fn bad_phone_numbers_are_refused_with_a_reason() {
        assert_eq!(PhoneNumber::parse("12345"), Err(PhoneError::InvalidLength));
        assert_eq!(PhoneNumber::parse("1234567890123456"), Err(PhoneError::InvalidLength));
        assert_eq!(PhoneNumber::parse("0555123456"), Err(PhoneError::LeadingZero));
        assert_eq!(PhoneNumber::parse("555-CALL-NOW"), Err(PhoneError::InvalidCharacters));
        assert_eq!(PhoneNumber::parse("1555+1234567"), Err(PhoneError::InvalidCharacters));
    }

    #[test]
    fn recipients_accept_numbers_and_jids() {
        let user = Jid::parse_recipient("+1 555 123 4567").unwrap();
        assert_eq!(user.to_string(), "15551234567@s.whatsapp.net");
        assert_eq!(user.phone().unwrap().as_str(), "15551234567");
        let device = Jid::parse("15551234567:3@s.whatsapp.net").unwrap();
        assert_eq!(device, user);
        let group = Jid::parse_recipient("120363021234567890@g.us").unwrap();
        assert!(group.is_group());
        assert_eq!(group.phone(), None);
        assert_eq!(Jid::parse("1@example.com"), Err(PhoneError::UnknownServer("example.com".into())));
        assert_eq!(Jid::parse("@g.us"), Err(PhoneError::EmptyUser));
    }
}
