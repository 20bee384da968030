-- A strict OpenID Connect provider: sessions known to portals by a public sid,
-- tokens that end with the session they came from, back-channel logout from a
-- durable queue, consent for third-party clients, accounts that can be disabled.
-- In step with migrations/postgres/0013_oidc_strict.sql.

-- The sid of ID tokens and logout tokens: one per browser sign-in, kept when the
-- same person signs in again in that browser (a step-up), so the portals' tokens
-- survive it.
ALTER TABLE sessions ADD COLUMN sid TEXT;
UPDATE sessions SET sid = lower(hex(randomblob(16)));
CREATE INDEX sessions_sid ON sessions(sid);

ALTER TABLE accounts ADD COLUMN disabled_at TEXT;

-- Third-party, back-channel logout URI, PAR, service, scopes, audience: JSON.
ALTER TABLE oidc_clients ADD COLUMN options TEXT NOT NULL DEFAULT '{}';

-- The session a code or token came from (NULL: not bound to one, as offline_access
-- tokens and those of services), and the client it was issued to.
ALTER TABLE oidc_codes ADD COLUMN sid TEXT;
-- The client it was issued to (so withdrawing a consent takes its codes along),
-- and when a replay of it was seen (so tokens its first use stores after that
-- are revoked too).
ALTER TABLE oidc_codes ADD COLUMN client_id TEXT;
ALTER TABLE oidc_codes ADD COLUMN replayed_at TEXT;
ALTER TABLE oidc_tokens ADD COLUMN sid TEXT;
ALTER TABLE oidc_tokens ADD COLUMN client_id TEXT;
UPDATE oidc_tokens SET client_id = json_extract(grant_json, '$.client_id')
    WHERE json_valid(grant_json);
CREATE INDEX oidc_codes_sid ON oidc_codes(sid);
CREATE INDEX oidc_tokens_sid ON oidc_tokens(sid);
CREATE INDEX oidc_tokens_client ON oidc_tokens(account_id, client_id);

-- The clients with a back-channel logout URI that a session signed in to.
CREATE TABLE oidc_session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX oidc_session_clients_account ON oidc_session_clients(account_id);

-- Logout tokens still to be delivered; a row goes when delivered or given up.
-- subject: the sub of the ended session (the account may be gone by then).
CREATE TABLE oidc_logout_queue (
    sid             TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    claimed_by      TEXT,
    last_error      TEXT,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX oidc_logout_queue_due ON oidc_logout_queue(next_attempt_at);

-- What a person allowed a third-party client (space-separated scopes).
CREATE TABLE oidc_consents (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
