//! Bearer JWTs: a token is verified against the configured keys (the HS256 secret, RS256 and
//! ES256 public keys from PEM files, and the keys of a JWKS document, fetched on a schedule and
//! at once, at most every `jwks_refetch_min_ms`, when a token names a `kid` the gateway lacks),
//! then read as a member of the organization its claims name, with their scopes and sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use wagate_core::{OrgId, Scope, SessionId};

use crate::config::{ms, JwtConfig};

/// The algorithms accepted: HMAC with the shared secret, RSA and P-256 with public keys.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256];

/// What a verified token says about its bearer.
#[derive(Debug)]
pub(crate) struct Bearer {
    /// Its `sub`: who the audit log names.
    pub(crate) subject: String,
    pub(crate) org: OrgId,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) sessions: Option<Vec<SessionId>>,
}

/// Why a token was refused, as the caller reads it (never anything of a key).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("this is not a well-formed JWT")]
    Malformed,
    #[error("this gateway does not accept {0} tokens")]
    Algorithm(String),
    #[error("no signing key has this token's kid {0:?}")]
    UnknownKid(String),
    #[error("this token names no kid, and no {0} signing key is known")]
    NoKey(String),
    #[error("this token's signature does not verify")]
    Signature,
    #[error("this token has expired (exp)")]
    Expired,
    #[error("this token is not valid yet (nbf)")]
    NotYetValid,
    #[error("this token is for another audience (aud)")]
    Audience,
    #[error("this token is from another issuer (iss)")]
    Issuer,
    #[error("this token lacks the `{0}` claim")]
    Missing(String),
    #[error("this token's `{0}` claim {1}")]
    Claim(String, String),
}

/// A JWT configuration that cannot work, found at start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("auth.jwt.public_key_files: cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("auth.jwt.public_key_files: {0} holds a private key; give the issuer's public key")]
    Private(PathBuf),
    #[error("auth.jwt.public_key_files: {0} is not an RSA or P-256 public key in PEM")]
    NotAKey(PathBuf),
    #[error("auth.jwt.hs256_secret: {0}")]
    Secret(jsonwebtoken::errors::Error),
    #[error("auth.jwt.jwks_url: cannot build an HTTP client: {0}")]
    Client(reqwest::Error),
}

/// A public key and the algorithm it verifies.
struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: Arc<DecodingKey>,
}

/// The verifier of this node.
pub(crate) struct Jwt {
    secret: Option<Arc<DecodingKey>>,
    pem_keys: Vec<PublicKey>,
    jwks: Option<Jwks>,
    /// One per accepted algorithm.
    validations: Vec<(Algorithm, Validation)>,
    org_claim: String,
    scopes_claim: String,
    sessions_claim: String,
}

impl Jwt {
    /// The verifier the configuration describes, or `None` when JWTs are off. Fetches the
    /// JWKS document once; when that fails, the gateway starts anyway (API keys keep working)
    /// and tokens are refused until a later fetch succeeds.
    pub(crate) async fn start(config: &JwtConfig) -> Result<Option<Arc<Self>>, SetupError> {
        if !config.enabled() {
            return Ok(None);
        }
        let secret = match &config.hs256_secret {
            Some(secret) => Some(Arc::new(
                DecodingKey::from_secret(secret.expose_secret().as_bytes()).map_err(SetupError::Secret)?,
            )),
            None => None,
        };
        let pem_keys = config.public_key_files.iter().map(|path| read_pem(path)).collect::<Result<_, _>>()?;
        let jwks = match &config.jwks_url {
            Some(url) => Some(Jwks::new(url.clone(), config)?),
            None => None,
        };
        let jwt = Arc::new(Self {
            secret,
            pem_keys,
            jwks,
            validations: ALGORITHMS.iter().map(|&alg| (alg, validation(alg, config))).collect(),
            org_claim: config.org_claim.clone(),
            scopes_claim: config.scopes_claim.clone(),
            sessions_claim: config.sessions_claim.clone(),
        });
        if let Some(jwks) = &jwt.jwks {
            jwks.refresh().await;
        }
        Ok(Some(jwt))
    }

    /// Fetches the JWKS document every `every` until `stopping` (nothing to do without one).
    pub(crate) async fn refresh_keys(self: Arc<Self>, every: Duration, stopping: CancellationToken) {
        let Some(jwks) = &self.jwks else { return };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        while stopping.run_until_cancelled(ticks.tick()).await.is_some() {
            jwks.refresh().await;
        }
    }

    /// Whether `presented` has the shape of a JWT (three dot-separated parts) rather than of
    /// an API key.
    pub(crate) fn looks_like_one(presented: &str) -> bool {
        presented.split('.').count() == 3
    }

    /// The bearer a valid token names; why not, otherwise.
    pub(crate) async fn verify(&self, token: &str) -> Result<Bearer, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Malformed)?;
        let alg = header.alg;
        let keys: Vec<Arc<DecodingKey>> = match alg {
            Algorithm::HS256 => self.secret.iter().cloned().collect(),
            Algorithm::RS256 | Algorithm::ES256 => {
                let mut keys: Vec<_> =
                    self.pem_keys.iter().filter(|k| k.algorithm == alg).map(|k| Arc::clone(&k.key)).collect();
                if let Some(jwks) = &self.jwks {
                    let mut found = jwks.matching(header.kid.as_deref(), alg);
                    if found.is_empty() && header.kid.is_some() {
                        // Perhaps the issuer rotated its keys since the last fetch.
                        jwks.refetch().await;
                        found = jwks.matching(header.kid.as_deref(), alg);
                    }
                    if found.is_empty() && keys.is_empty() {
                        return Err(match header.kid {
                            Some(kid) => Refused::UnknownKid(kid),
                            None => Refused::NoKey(format!("{alg:?}")),
                        });
                    }
                    keys.extend(found);
                }
                keys
            }
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return Err(Refused::Algorithm(format!("{alg:?}")));
        }
        let validation = self.validations.iter().find(|(a, _)| *a == alg).map(|(_, v)| v);
        let Some(validation) = validation else { return Err(Refused::Algorithm(format!("{alg:?}"))) };
        let mut claims = None;
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                // Another key may be the one that signed it.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(e) => return Err(refusal(e.kind())),
            }
        }
        self.bearer(claims.ok_or(Refused::Signature)?)
    }

    /// Reads the claims of a verified token.
    fn bearer(&self, mut claims: Map<String, Value>) -> Result<Bearer, Refused> {
        let subject = match claims.remove("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub,
            _ => return Err(Refused::Missing("sub".into())),
        };
        let claim = |name: &str, why: &str| Refused::Claim(name.to_owned(), why.to_owned());
        let org = match claims.get(&self.org_claim) {
            None | Some(Value::Null) => return Err(Refused::Missing(self.org_claim.clone())),
            Some(Value::String(org)) => {
                OrgId::parse(org).map_err(|_| claim(&self.org_claim, "is not an organization id"))?
            }
            Some(_) => return Err(claim(&self.org_claim, "must be a string")),
        };
        let named: Vec<&str> = match claims.get(&self.scopes_claim) {
            None | Some(Value::Null) => return Err(Refused::Missing(self.scopes_claim.clone())),
            Some(Value::String(scopes)) => scopes.split_whitespace().collect(),
            Some(Value::Array(scopes)) => scopes
                .iter()
                .map(|s| s.as_str().ok_or_else(|| claim(&self.scopes_claim, "must list strings")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(claim(&self.scopes_claim, "must be a space-separated string or a list")),
        };
        let scopes = named
            .iter()
            .map(|s| {
                Scope::parse(s).ok_or_else(|| {
                    Refused::Claim(self.scopes_claim.clone(), format!("names an unknown scope {s:?}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if scopes.is_empty() {
            return Err(claim(&self.scopes_claim, "grants no scope"));
        }
        let sessions = match claims.get(&self.sessions_claim) {
            None | Some(Value::Null) => None,
            Some(Value::Array(ids)) => Some(
                ids.iter()
                    .map(|id| id.as_str().and_then(|id| SessionId::parse(id).ok()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| claim(&self.sessions_claim, "must list session ids"))?,
            ),
            Some(_) => return Err(claim(&self.sessions_claim, "must be a list of session ids")),
        };
        Ok(Bearer { subject, org, scopes, sessions })
    }
}

/// What is checked of a token signed with `alg`: `exp`, `nbf` when present, `sub`, `aud`, and
/// `iss` when an issuer is configured.
fn validation(alg: Algorithm, config: &JwtConfig) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway_ms / 1000;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub", "aud"];
    if let Some(audience) = &config.audience {
        validation.set_audience(&[audience]);
    }
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn refusal(kind: &ErrorKind) -> Refused {
    match kind {
        ErrorKind::ExpiredSignature => Refused::Expired,
        ErrorKind::ImmatureSignature => Refused::NotYetValid,
        ErrorKind::InvalidAudience => Refused::Audience,
        ErrorKind::InvalidIssuer => Refused::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => Refused::Missing(claim.clone()),
        ErrorKind::InvalidClaimFormat(claim) => Refused::Claim(claim.clone(), "has the wrong type".into()),
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey => Refused::Signature,
        _ => Refused::Malformed,
    }
}

/// A public key from a PEM file: RSA verifies RS256, an EC (P-256) key ES256.
fn read_pem(path: &Path) -> Result<PublicKey, SetupError> {
    let pem = std::fs::read(path).map_err(|e| SetupError::Read(path.to_owned(), e))?;
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        return Err(SetupError::Private(path.to_owned()));
    }
    let (algorithm, key) = match (DecodingKey::from_rsa_pem(&pem), DecodingKey::from_ec_pem(&pem)) {
        (Ok(key), _) => (Algorithm::RS256, key),
        (_, Ok(key)) => (Algorithm::ES256, key),
        _ => return Err(SetupError::NotAKey(path.to_owned())),
    };
    Ok(PublicKey { kid: None, algorithm, key: Arc::new(key) })
}

/// The issuer's published keys, as last fetched.
struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Arc<Vec<PublicKey>>>,
    /// When the document was last fetched (or tried); held while fetching, so that the tokens
    /// that arrive meanwhile wait for that fetch instead of starting their own.
    fetched: tokio::sync::Mutex<Option<Instant>>,
    refetch_min: Duration,
}

impl Jwks {
    fn new(url: String, config: &JwtConfig) -> Result<Self, SetupError> {
        let client = reqwest::Client::builder()
            .timeout(ms(config.jwks_timeout_ms.get()))
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Arc::new(Vec::new())),
            fetched: tokio::sync::Mutex::new(None),
            refetch_min: ms(config.jwks_refetch_min_ms.get()),
        })
    }

    /// The keys that may have signed a token with this `kid` (all of the algorithm without one).
    fn matching(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<DecodingKey>> {
        self.keys
            .read()
            .iter()
            .filter(|k| k.algorithm == alg && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .map(|k| Arc::clone(&k.key))
            .collect()
    }

    /// Fetches the document now.
    async fn refresh(&self) {
        let mut fetched = self.fetched.lock().await;
        *fetched = Some(Instant::now());
        self.fetch().await;
    }

    /// Fetches the document unless it was fetched less than `refetch_min` ago.
    async fn refetch(&self) {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.refetch_min) {
            return;
        }
        *fetched = Some(Instant::now());
        self.fetch().await;
    }

    async fn fetch(&self) {
        let document = async {
            let response = self.client.get(&self.url).send().await?.error_for_status()?;
            response.json::<JwkSet>().await
        };
        match document.await {
            Ok(set) => {
                let keys: Vec<PublicKey> = set.keys.iter().filter_map(public_key).collect();
                if keys.len() < set.keys.len() {
                    tracing::warn!(
                        url = %self.url,
                        skipped = set.keys.len() - keys.len(),
                        "the JWKS document has keys wagate cannot use (only RS256 and ES256 signing keys)"
                    );
                }
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched the JWKS document");
                *self.keys.write() = Arc::new(keys);
            }
            Err(e) => {
                // The keys fetched last stay in use.
                tracing::error!(url = %self.url, error = %e, "cannot fetch the JWKS document");
            }
        }
    }
}

/// A signing key of the document that wagate can use.
fn public_key(jwk: &Jwk) -> Option<PublicKey> {
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(PublicKey { kid: jwk.common.key_id.clone(), algorithm, key: Arc::new(key) })
}
