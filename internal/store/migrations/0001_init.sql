-- 0001: API keys and the audit log.
-- Times are INTEGER milliseconds since the Unix epoch, UTC; NULL means never.
-- JSON arrays of strings hold scopes and reference patterns.

CREATE TABLE api_keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    secret_hmac    BLOB    NOT NULL,
    pepper_version INTEGER NOT NULL,
    scopes         TEXT    NOT NULL DEFAULT '[]',
    allow_read     TEXT    NOT NULL DEFAULT '[]',
    allow_write    TEXT    NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER,
    revoked_at     INTEGER,
    rotated_from   TEXT    REFERENCES api_keys(id)
) STRICT;

CREATE INDEX api_keys_rotated_from ON api_keys(rotated_from);

CREATE TABLE audit_log (
    seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor_key_id TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    target       TEXT    NOT NULL DEFAULT '',
    outcome      TEXT    NOT NULL,
    detail       TEXT    NOT NULL DEFAULT '',
    remote_addr  TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_log_actor ON audit_log(actor_key_id, seq);

-- The audit log is append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
