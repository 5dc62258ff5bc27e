//! Who is calling: the [`Principal`] the auth middleware puts in every authenticated request,
//! and the [`Caller`] extractor through which a handler declares the scope it needs.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use wagate_core::{KeyId, OrgId, Scope, Session, SessionId};

use crate::api::{ApiError, ErrorCode};

/// Who made a request, as the audit log names them (and whose bucket a request takes from).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Actor {
    /// The bootstrap admin key.
    Admin,
    Key(KeyId),
    /// A JWT's subject (`sub`).
    Jwt(String),
}

/// The caller of an authenticated request: who, in which organization, allowed what.
#[derive(Debug, Clone)]
pub(crate) struct Principal(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    actor: Actor,
    /// `None` for the operator (the bootstrap admin key), who sees every organization.
    org: Option<OrgId>,
    scopes: Vec<Scope>,
    /// The sessions it is limited to, if it is.
    sessions: Option<Vec<SessionId>>,
}

impl Principal {
    /// The bootstrap admin key: every scope in every organization.
    pub(crate) fn operator() -> Self {
        Self(Arc::new(Inner { actor: Actor::Admin, org: None, scopes: vec![Scope::Admin], sessions: None }))
    }

    /// A caller within one organization.
    pub(crate) fn member(
        actor: Actor,
        org: OrgId,
        scopes: Vec<Scope>,
        sessions: Option<Vec<SessionId>>,
    ) -> Self {
        Self(Arc::new(Inner { actor, org: Some(org), scopes, sessions }))
    }

    pub(crate) fn actor(&self) -> &Actor {
        &self.0.actor
    }

    /// Its organization; `None` for the operator.
    pub(crate) fn org(&self) -> Option<&OrgId> {
        self.0.org.as_ref()
    }

    pub(crate) fn is_operator(&self) -> bool {
        self.0.org.is_none()
    }

    fn has(&self, wanted: Scope) -> bool {
        self.0.scopes.iter().any(|held| held.grants(wanted))
    }

    /// Whether it may see what belongs to `org`.
    pub(crate) fn sees_org(&self, org: &OrgId) -> bool {
        self.0.org.as_ref().is_none_or(|own| own == org)
    }

    /// Whether it may see (and, with the scope, act on) a session.
    pub(crate) fn sees_session(&self, session: &Session) -> bool {
        self.sees(&session.org_id, &session.id)
    }

    /// Whether it may see (and, with the scope, act on) the session `id` of `org`.
    pub(crate) fn sees(&self, org: &OrgId, id: &SessionId) -> bool {
        self.sees_org(org) && self.0.sessions.as_ref().is_none_or(|allowed| allowed.contains(id))
    }

    /// The sessions it is limited to, if it is.
    pub(crate) fn sessions(&self) -> Option<&[SessionId]> {
        self.0.sessions.as_deref()
    }

    /// The organization something new it creates belongs to: its own, or for the operator the
    /// one it names (`default` when it names none). A member naming another organization is
    /// told it does not exist.
    pub(crate) fn org_for_new(&self, named: Option<OrgId>) -> Result<OrgId, ApiError> {
        match (&self.0.org, named) {
            (None, named) => Ok(named.unwrap_or_else(OrgId::default_org)),
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(named)) if *own == named => Ok(named),
            (Some(_), Some(named)) => Err(org_not_found(named.as_str())),
        }
    }

    /// The organization whose shared things (templates, uploads) it works with: its own, or
    /// for the operator `default`.
    pub(crate) fn home_org(&self) -> OrgId {
        self.0.org.clone().unwrap_or_else(OrgId::default_org)
    }
}

pub(crate) fn org_not_found(id: &str) -> ApiError {
    ApiError::not_found(ErrorCode::OrgNotFound, format!("organization {id:?} not found"))
}

/// A scope a route needs, as a type: `Caller<scope::SendMessages>` in a handler's arguments is
/// the route's declaration that it needs `messages:send`.
pub(crate) trait RequiredScope {
    /// `None`: only the operator (the bootstrap admin key) may call the route.
    const SCOPE: Option<Scope>;
}

/// The scopes routes declare.
pub(crate) mod scope {
    use super::{RequiredScope, Scope};

    macro_rules! scopes {
        ($($(#[$doc:meta])* $name:ident => $scope:expr;)*) => {$(
            $(#[$doc])*
            pub(crate) struct $name;
            impl RequiredScope for $name {
                const SCOPE: Option<Scope> = $scope;
            }
        )*};
    }

    scopes! {
        ReadSessions => Some(Scope::SessionsRead);
        ManageSessions => Some(Scope::SessionsManage);
        SendMessages => Some(Scope::MessagesSend);
        ReadMessages => Some(Scope::MessagesRead);
        ManageWebhooks => Some(Scope::WebhooksManage);
        ManageTemplates => Some(Scope::TemplatesManage);
        /// An organization's admin: its API keys and audit log.
        Admin => Some(Scope::Admin);
        /// The operator of the gateway: organizations and the cluster.
        Operator => None;
    }
}

/// The caller of a route that needs scope `S`; refused with 403 when it lacks it.
pub(crate) struct Caller<S>(pub Principal, PhantomData<S>);

impl<S> std::ops::Deref for Caller<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: RequiredScope, St: Send + Sync> FromRequestParts<St> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        let principal =
            parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
                ApiError::internal("a route that needs a caller is not behind the auth layer")
            })?;
        let allowed = match S::SCOPE {
            Some(scope) => principal.has(scope),
            None => principal.is_operator(),
        };
        if !allowed {
            let needed = S::SCOPE.map_or("the gateway's admin key", Scope::as_str);
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                format!("this key may not do that: it needs {needed}"),
            )
            .with_details(serde_json::json!({ "scope": S::SCOPE.map(Scope::as_str) })));
        }
        Ok(Caller(principal, PhantomData))
    }
}
