-- OpenID Connect code flow: pending authorization requests, authorization codes
-- and access/refresh tokens. Only SHA-256 hashes of the random values are kept.
-- In step with migrations/postgres/0008_oidc_flow.sql.

-- An authorization request waiting for the person to sign in (short-lived).
CREATE TABLE oidc_requests (
    id_hash    TEXT PRIMARY KEY,
    request    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Authorization codes: single use; the grant (client, account, PKCE challenge,
-- nonce, scope, auth_time, amr) as JSON.
CREATE TABLE oidc_codes (
    code_hash  TEXT PRIMARY KEY,
    grant_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- Access and refresh tokens. family = the hash of the code they came from, so a
-- replayed code or refresh token revokes everything issued from it.
CREATE TABLE oidc_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family     TEXT NOT NULL,
    grant_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
);
CREATE INDEX oidc_tokens_family ON oidc_tokens(family);
