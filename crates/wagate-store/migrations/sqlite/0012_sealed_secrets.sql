-- Secrets are sealed under a master key (XChaCha20-Poly1305): each sealed value keeps the id of
-- its key beside it. NULL means plaintext from before this migration; the store seals those when
-- it opens. Text columns hold the sealed bytes in base64.
ALTER TABLE device_keys ADD COLUMN key_id TEXT;
ALTER TABLE sessions ADD COLUMN credentials_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN secret_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_key_id TEXT;
