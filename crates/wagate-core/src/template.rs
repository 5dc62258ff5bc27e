//! Message templates (a message body with `{{var}}` placeholders, filled in at send time) and
//! the trigger hooks that send them.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::MessageContent;

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Template {
    pub name: String,
    pub language: Option<String>,
    /// The message body, placeholders and all.
    pub content: MessageContent,
    /// The placeholders the content uses, in alphabetical order.
    pub params: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A trigger hook: whoever holds its secret URL can send to its fixed recipients, without
/// an API key (for example a CI pipeline announcing a failed build).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hook {
    pub id: crate::HookId,
    pub session_id: crate::SessionId,
    /// The recipients every call sends to.
    pub to: Vec<String>,
    /// When set, a call sends this template with the params it posts; otherwise the text it posts.
    pub template: Option<String>,
    pub description: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a template name is not acceptable.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of a-z, 0-9, _ and -")
    }
}

/// The placeholder name inside `{{…}}`, if `inner` is one (spaces around it allowed).
fn placeholder(inner: &str) -> Option<&str> {
    let name = inner.trim();
    let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then_some(name)
}

/// Splits `text` at each `{{…}}`: the text before it, and its inside (None after the last).
fn pieces(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find("{{").and_then(|start| current[start + 2..].find("}}").map(|end| (start, end))) {
            Some((start, end)) => {
                let inner = &current[start + 2..start + 2 + end];
                rest = Some(&current[start + 2 + end + 2..]);
                Some((&current[..start], Some(inner)))
            }
            None => {
                rest = None;
                Some((current, None))
            }
        }
    })
}

/// The names of the `{{var}}` placeholders in a text.
pub fn placeholders(text: &str) -> BTreeSet<String> {
    pieces(text).filter_map(|(_, inner)| inner.and_then(placeholder)).map(str::to_owned).collect()
}

/// Fills in every placeholder of `text` from `params`; the error names the first missing one.
/// Braces around something that is not a name (`{{ }}`, `{{a b}}`) are kept as written.
pub fn render(text: &str, params: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (before, inner) in pieces(text) {
        out.push_str(before);
        match inner.map(|inner| (inner, placeholder(inner))) {
            Some((_, Some(name))) => out.push_str(params.get(name).ok_or_else(|| name.to_owned())?),
            Some((inner, None)) => {
                out.push_str("{{");
                out.push_str(inner);
                out.push_str("}}");
            }
            None => {}
        }
    }
    Ok(out)
}

impl MessageContent {
    /// The texts of this content that a template fills in: what the recipient reads (a
    /// text's body, a caption, a document's file name, a place's name and address, a poll's
    /// question and options). Contact cards are left out: their vCard is built from the
    /// fields when the content is accepted, so a placeholder would not reach it. Reactions,
    /// edits and revokes act on one message and are never templates.
    fn template_texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            MessageContent::Text { text } => vec![&mut text.body],
            MessageContent::Image { image: media }
            | MessageContent::Video { video: media }
            | MessageContent::Audio { audio: media }
            | MessageContent::Document { document: media }
            | MessageContent::Sticker { sticker: media } => {
                media.caption.iter_mut().chain(media.filename.iter_mut()).collect()
            }
            MessageContent::Location { location } => {
                location.name.iter_mut().chain(location.address.iter_mut()).collect()
            }
            MessageContent::Poll { poll } => {
                std::iter::once(&mut poll.question).chain(poll.options.iter_mut()).collect()
            }
            MessageContent::Contacts { .. }
            | MessageContent::Reaction { .. }
            | MessageContent::Edit { .. }
            | MessageContent::Revoke { .. } => Vec::new(),
        }
    }

    /// The names of the placeholders this content uses, in alphabetical order.
    pub fn template_params(&self) -> BTreeSet<String> {
        let mut content = self.clone();
        content.template_texts_mut().into_iter().flat_map(|text| placeholders(text)).collect()
    }

    /// This content with every placeholder filled in; the error names the first missing one.
    pub fn render(&self, params: &HashMap<String, String>) -> Result<MessageContent, String> {
        let mut rendered = self.clone();
        for text in rendered.template_texts_mut() {
            *text = render(text, params)?;
        }
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_are_found_and_filled() {
        let text = "Hi {{name}}, your order {{ order }} ships {{name}}-day. {{ }} {{a b}} {{";
        assert_eq!(placeholders(text).into_iter().collect::<Vec<_>>(), ["name", "order"]);
        assert_eq!(
            render(text, &params(&[("name", "Ann"), ("order", "#42")])).unwrap(),
            "Hi Ann, your order #42 ships Ann-day. {{ }} {{a b}} {{"
        );
        assert_eq!(render("{{x}}{{y}}", &params(&[("x", "{{y}}"), ("y", "1")])).unwrap(), "{{y}}1");
    }

    #[test]
    fn every_text_a_recipient_reads_is_filled_in() {
        let media = crate::MediaContent {
            id: crate::MediaId::generate(),
            mime_type: "application/pdf".into(),
            size: 1,
            sha256: String::new(),
            caption: Some("For {{name}}".into()),
            filename: Some("{{order}}.pdf".into()),
            voice: false,
        };
        let document = MessageContent::Document { document: media };
        assert_eq!(document.template_params().into_iter().collect::<Vec<_>>(), ["name", "order"]);
        let rendered = document.render(&params(&[("name", "Ann"), ("order", "42")])).unwrap();
        let (_, part) = rendered.media_part().unwrap();
        assert_eq!((part.caption.as_deref(), part.filename.as_deref()), (Some("For Ann"), Some("42.pdf")));

        let location = MessageContent::Location {
            location: crate::LocationContent {
                latitude: 1.0,
                longitude: 2.0,
                name: Some("{{shop}}".into()),
                address: Some("{{street}}".into()),
            },
        };
        assert_eq!(location.render(&params(&[("shop", "Acme")])), Err("street".to_owned()));
        let poll = MessageContent::Poll {
            poll: crate::PollContent {
                question: "{{q}}?".into(),
                options: vec!["{{a}}".into(), "no".into()],
                selectable_count: 1,
            },
        };
        assert_eq!(poll.template_params().into_iter().collect::<Vec<_>>(), ["a", "q"]);
    }

    #[test]
    fn a_missing_parameter_is_named() {
        assert_eq!(render("Hi {{name}} {{city}}", &params(&[("name", "Ann")])), Err("city".to_owned()));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("welcome_2").is_ok());
        assert!(check_name("Welcome").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
