-- Times are RFC 3339 text in UTC; ids are UUID text.
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL DEFAULT '',
    role              TEXT NOT NULL CHECK (role IN ('user', 'support', 'admin')),
    password_hash     TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    code_failures     INTEGER NOT NULL DEFAULT 0,
    code_locked_until TEXT,
    password_failures INTEGER NOT NULL DEFAULT 0,
    password_locked_until TEXT
);

CREATE TABLE factors (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    label          TEXT NOT NULL,
    secret_sealed  BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    confirmed_at   TEXT,
    last_used_at   TEXT,
    last_step      INTEGER
);
CREATE INDEX factors_account ON factors(account_id);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    auth_time    TEXT NOT NULL,
    amr          TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    event      TEXT NOT NULL,
    account_id TEXT,
    email      TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT
);
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_email ON audit_log(email);
