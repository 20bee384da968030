-- PostgreSQL schema. migrations/sqlite and migrations/postgres must stay in step:
-- the same numbering, the same meaning (tests/conformance.rs checks the numbering).
-- Times are TIMESTAMPTZ (microseconds, as the SQLite text); ids are UUIDs.
CREATE TABLE accounts (
    id                    UUID PRIMARY KEY,
    email                 TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL DEFAULT '',
    role                  TEXT NOT NULL CHECK (role IN ('user', 'support', 'admin')),
    password_hash         TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    code_failures         BIGINT NOT NULL DEFAULT 0,
    code_locked_until     TIMESTAMPTZ,
    password_failures     BIGINT NOT NULL DEFAULT 0,
    password_locked_until TIMESTAMPTZ
);

CREATE TABLE factors (
    id             UUID PRIMARY KEY,
    account_id     UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    label          TEXT NOT NULL,
    secret_sealed  BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    confirmed_at   TIMESTAMPTZ,
    last_used_at   TIMESTAMPTZ,
    last_step      BIGINT
);
CREATE INDEX factors_account ON factors(account_id);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    auth_time    TIMESTAMPTZ NOT NULL,
    amr          TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    event      TEXT NOT NULL,
    account_id UUID,
    email      TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT
);
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_email ON audit_log(email);
