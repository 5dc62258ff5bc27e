-- Media files; the bytes live in the media store (a directory or S3), under the id.
CREATE TABLE media (
    id TEXT PRIMARY KEY,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX media_by_age ON media (created_at);
