-- Mail: the language each account is written to, and the durable outgoing queue.
ALTER TABLE accounts ADD COLUMN language TEXT NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en'));

-- One row per message. `payload` is the JSON of the notice (what is needed to
-- render it, never a secret); the worker renders and sends it. A worker claims a
-- due row by setting `locked_until`/`claimed_by` in one UPDATE; a claim whose node
-- died expires with its lease.
CREATE TABLE mail_queue (
    id              TEXT PRIMARY KEY,
    account_id      TEXT,
    recipient       TEXT NOT NULL,
    recipient_name  TEXT NOT NULL DEFAULT '',
    language        TEXT NOT NULL DEFAULT 'nl',
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    locked_until    TEXT,
    claimed_by      TEXT,
    sent_at         TEXT,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue(status, next_attempt_at);
