-- A strict OpenID Connect provider: sessions known to portals by a public sid,
-- tokens that end with the session they came from, back-channel logout from a
-- durable queue, consent for third-party clients, accounts that can be disabled.
-- In step with migrations/sqlite/0013_oidc_strict.sql.

ALTER TABLE sessions ADD COLUMN sid TEXT;
UPDATE sessions SET sid = md5(random()::text || id_hash);
CREATE INDEX sessions_sid ON sessions(sid);

ALTER TABLE accounts ADD COLUMN disabled_at TIMESTAMPTZ;

ALTER TABLE oidc_clients ADD COLUMN options TEXT NOT NULL DEFAULT '{}';

ALTER TABLE oidc_codes ADD COLUMN sid TEXT;
-- The client it was issued to (so withdrawing a consent takes its codes along),
-- and when a replay of it was seen (so tokens its first use stores after that
-- are revoked too).
ALTER TABLE oidc_codes ADD COLUMN client_id TEXT;
ALTER TABLE oidc_codes ADD COLUMN replayed_at TIMESTAMPTZ;
ALTER TABLE oidc_tokens ADD COLUMN sid TEXT;
ALTER TABLE oidc_tokens ADD COLUMN client_id TEXT;
UPDATE oidc_tokens SET client_id = substring(grant_json from '"client_id":"([^"]*)"');
CREATE INDEX oidc_codes_sid ON oidc_codes(sid);
CREATE INDEX oidc_tokens_sid ON oidc_tokens(sid);
CREATE INDEX oidc_tokens_client ON oidc_tokens(account_id, client_id);

CREATE TABLE oidc_session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX oidc_session_clients_account ON oidc_session_clients(account_id);

CREATE TABLE oidc_logout_queue (
    sid             TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    claimed_by      UUID,
    last_error      TEXT,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX oidc_logout_queue_due ON oidc_logout_queue(next_attempt_at);

CREATE TABLE oidc_consents (
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
