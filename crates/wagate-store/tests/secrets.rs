//! Secrets at rest: what the database holds of a device's keys, a session's credentials and a
//! webhook's secrets is sealed under the master key, read back as raw rows.

#![allow(clippy::unwrap_used, unreachable_pub)]

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, FromRow, PgConnection, SqliteConnection};
use tempfile::TempDir;
use wagate_core::{ConnectorKind, DeviceKey, SessionId, Timestamp, WebhookId};
use wagate_store::testing::{on_both_stores, TestDatabase};
use wagate_store::{
    testing, Credentials, KeyError, Keyring, MasterKey, NewSession, NewWebhook, PgStore, SessionChange,
    SqliteStore, Store, StoreError,
};

const IDENTITY: &[u8] = b"the device's identity key pair";
const SECRET: &str = "whsec_c2VjcmV0IHNpZ25pbmcga2V5";
const NEXT_SECRET: &str = "whsec_bmV4dCBzaWduaW5nIGtleQ==";

enum Backend {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

impl Backend {
    async fn new(postgres: bool) -> Option<Self> {
        if !postgres {
            return Some(Self::Sqlite(TempDir::new().unwrap()));
        }
        Some(Self::Postgres(TestDatabase::create(&testing::postgres_server()?).await.unwrap()))
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("test.db").display()),
            Self::Postgres(db) => db.url.clone(),
        }
    }

    async fn open(&self, keyring: Keyring) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Self::Sqlite(_) => Box::new(SqliteStore::open(&self.url(), keyring).await?),
            Self::Postgres(_) => Box::new(PgStore::open(&self.url(), keyring).await?),
        })
    }

    /// The rows a query answers, read past the store.
    async fn raw<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self {
            Self::Sqlite(_) => {
                let mut conn = SqliteConnection::connect(&self.url()).await.unwrap();
                sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
            }
            Self::Postgres(_) => {
                let mut conn = PgConnection::connect(&self.url()).await.unwrap();
                sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }

    /// Writes past the store, as a version from before sealing did: `$1` is `IDENTITY`, `$2`
    /// is `SECRET`.
    async fn write_plaintext(&self, sql: &str) {
        match self {
            Self::Sqlite(_) => {
                let mut conn = SqliteConnection::connect(&self.url()).await.unwrap();
                sqlx::query(sql).bind(IDENTITY).bind(SECRET).execute(&mut conn).await.unwrap();
            }
            Self::Postgres(_) => {
                let mut conn = PgConnection::connect(&self.url()).await.unwrap();
                sqlx::query(sql).bind(IDENTITY).bind(SECRET).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Every sealed column's stored value and key id.
    async fn sealed_columns(&self) -> Vec<(String, Vec<u8>, Option<String>)> {
        let keys: Vec<(Vec<u8>, Option<String>)> = self.raw("SELECT value, key_id FROM device_keys").await;
        let texts: Vec<(String, String, Option<String>)> = self
            .raw(
                "SELECT 'credentials', credentials, credentials_key_id FROM sessions WHERE credentials IS NOT NULL \
                 UNION ALL SELECT 'secret', secret, secret_key_id FROM webhooks \
                 UNION ALL SELECT 'previous', previous_secret, previous_secret_key_id FROM webhooks \
                 WHERE previous_secret IS NOT NULL",
            )
            .await;
        keys.into_iter()
            .map(|(value, id)| ("device key".to_owned(), value, id))
            .chain(texts.into_iter().map(|(column, value, id)| (column, value.into_bytes(), id)))
            .collect()
    }
}

on_both_stores!(
    Backend:
    secrets_are_sealed_at_rest_and_need_their_key_to_open,
    plaintext_from_an_earlier_version_is_sealed_when_the_store_opens,
    a_rotation_seals_every_secret_again_under_the_new_key,
);

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

fn keyring(keys: &[&MasterKey]) -> Keyring {
    Keyring::new(keys.iter().map(|k| (*k).clone()).collect()).unwrap()
}

/// A linked session with a device key, and a webhook whose secret was rotated once.
async fn secrets(store: &dyn Store, now: Timestamp) -> WebhookId {
    let new = NewSession {
        id: sid("alice"),
        org_id: wagate_core::OrgId::default_org(),
        connector: ConnectorKind::Web,
        name: None,
        config: json!({}),
        metadata: json!({}),
    };
    store.create_session(new, now).await.unwrap();
    let change = SessionChange {
        credentials: Credentials::Set(json!({"jid": "15550001111@s.whatsapp.net"})),
        ..Default::default()
    };
    store.update_session(&sid("alice"), change, now).await.unwrap();
    store.put_device_keys(&sid("alice"), vec![DeviceKey::new("identity", "own", IDENTITY, 0)]).await.unwrap();
    let webhook = NewWebhook {
        org_id: wagate_core::OrgId::default_org(),
        url: "https://example.com/hook".into(),
        events: vec!["*".into()],
        session_id: None,
        description: None,
        secret: SECRET.into(),
    };
    let webhook = store.create_webhook(webhook, now).await.unwrap();
    store
        .rotate_webhook_secret(&webhook.id, NEXT_SECRET.into(), now + Duration::hours(1), now)
        .await
        .unwrap();
    webhook.id
}

/// What the store reads back: the device key, the credentials and both webhook secrets.
async fn read_back(store: &dyn Store, webhook: &WebhookId) {
    let keys = store.get_device_keys(&sid("alice"), "identity", &["own"]).await.unwrap();
    assert_eq!(keys[0].value, IDENTITY);
    let session = store.get_session(&sid("alice")).await.unwrap().unwrap();
    assert_eq!(session.credentials, Some(json!({"jid": "15550001111@s.whatsapp.net"})));
    let webhook = store.get_webhook(webhook).await.unwrap().unwrap();
    assert_eq!(webhook.secret, NEXT_SECRET);
    assert_eq!(webhook.previous_secret.unwrap().0, SECRET);
}

fn assert_sealed_under(columns: &[(String, Vec<u8>, Option<String>)], key: &MasterKey) {
    assert_eq!(columns.len(), 4, "{columns:?}");
    for (column, value, key_id) in columns {
        assert_eq!(key_id.as_deref(), Some(key.id().as_str()), "{column}");
        for plain in [IDENTITY, SECRET.as_bytes(), NEXT_SECRET.as_bytes(), b"15550001111"] {
            assert!(!value.windows(plain.len()).any(|w| w == plain), "{column} holds plaintext");
        }
    }
}

async fn secrets_are_sealed_at_rest_and_need_their_key_to_open(db: Backend) {
    let key = MasterKey::generate();
    let store = db.open(keyring(&[&key])).await.unwrap();
    let webhook = secrets(&*store, Utc::now()).await;
    read_back(&*store, &webhook).await;
    store.close().await;
    assert_sealed_under(&db.sealed_columns().await, &key);

    // Another key, or none of the right ones, opens nothing: the store says which key it needs.
    let other = MasterKey::generate();
    match db.open(keyring(&[&other])).await {
        Err(StoreError::Keys(KeyError::Unknown(id))) => assert_eq!(id, key.id().as_str()),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened with the wrong master key"),
    }
    // A different key under the right id (a value altered, or a key mistyped) does not open either.
    let store = db.open(keyring(&[&key])).await.unwrap();
    store.close().await;
    db.write_plaintext("UPDATE device_keys SET value = $1 WHERE $2 <> ''").await;
    let store = db.open(keyring(&[&key])).await.unwrap();
    let broken = store.get_device_keys(&sid("alice"), "identity", &["own"]).await.unwrap_err();
    assert!(broken.to_string().contains("does not open"), "{broken}");
}

async fn plaintext_from_an_earlier_version_is_sealed_when_the_store_opens(db: Backend) {
    let key = MasterKey::generate();
    let now = Utc::now();
    let store = db.open(keyring(&[&key])).await.unwrap();
    let webhook = secrets(&*store, now).await;
    store.close().await;
    // As an earlier version left them: plaintext, no key ids.
    db.write_plaintext("UPDATE device_keys SET value = $1, key_id = NULL WHERE $2 <> ''").await;
    db.write_plaintext(
        "UPDATE webhooks SET secret = $2, secret_key_id = NULL, previous_secret = $2, \
         previous_secret_key_id = NULL WHERE $1 IS NOT NULL",
    )
    .await;
    db.write_plaintext(
        "UPDATE sessions SET credentials = '{\"jid\": \"15550001111@s.whatsapp.net\"}', \
         credentials_key_id = NULL WHERE $1 IS NOT NULL AND $2 IS NOT NULL",
    )
    .await;

    let store = db.open(keyring(&[&key])).await.unwrap();
    store.close().await;
    assert_sealed_under(&db.sealed_columns().await, &key);
    let store = db.open(keyring(&[&key])).await.unwrap();
    let keys = store.get_device_keys(&sid("alice"), "identity", &["own"]).await.unwrap();
    assert_eq!(keys[0].value, IDENTITY);
    let webhook = store.get_webhook(&webhook).await.unwrap().unwrap();
    assert_eq!((webhook.secret.as_str(), webhook.previous_secret.unwrap().0.as_str()), (SECRET, SECRET));
    let session = store.get_session(&sid("alice")).await.unwrap().unwrap();
    assert_eq!(session.credentials, Some(json!({"jid": "15550001111@s.whatsapp.net"})));
}

async fn a_rotation_seals_every_secret_again_under_the_new_key(db: Backend) {
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let store = db.open(keyring(&[&old])).await.unwrap();
    let webhook = secrets(&*store, Utc::now()).await;
    store.close().await;

    let store = db.open(keyring(&[&new, &old])).await.unwrap();
    assert_eq!(store.sealing_key_ids().await.unwrap(), [old.id().to_string()]);
    assert_eq!(store.reseal_secrets().await.unwrap(), 3, "a device key, a session, a webhook");
    assert_eq!(store.sealing_key_ids().await.unwrap(), [new.id().to_string()]);
    assert_eq!(store.reseal_secrets().await.unwrap(), 0, "nothing left under the old key");
    store.close().await;
    assert_sealed_under(&db.sealed_columns().await, &new);

    // The old key can go.
    let store = db.open(keyring(&[&new])).await.unwrap();
    read_back(&*store, &webhook).await;
}
