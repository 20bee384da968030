-- Mail: the language each account is written to, and the durable outgoing queue.
-- In step with migrations/sqlite/0002_mail.sql.
ALTER TABLE accounts ADD COLUMN language TEXT NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en'));

-- One row per message. `payload` is the JSON of the notice (what is needed to
-- render it, never a secret); the worker renders and sends it. Workers on every
-- node claim due rows with UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
-- LOCKED); a claim whose node died expires with its lease (`locked_until`).
CREATE TABLE mail_queue (
    id              UUID PRIMARY KEY,
    account_id      UUID,
    recipient       TEXT NOT NULL,
    recipient_name  TEXT NOT NULL DEFAULT '',
    language        TEXT NOT NULL DEFAULT 'nl',
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until    TIMESTAMPTZ,
    claimed_by      UUID,
    sent_at         TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue(status, next_attempt_at);
