-- One table for the one-time codes of half-finished sessions: the code mailed by
-- "secure your account now" (was email_codes, 0004) and the live SMS code of a
-- sign-in or set-up (was sms_codes, 0006). In step with
-- migrations/postgres/0010_session_codes.sql.
--
-- One code per session and purpose, so a session's mailed code and its SMS code
-- never replace each other. Only an HMAC of the code is kept. A code dies with its
-- session; an SMS code also with the factor (phone) it went to.
CREATE TABLE session_codes (
    session_hash TEXT NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE,
    purpose      TEXT NOT NULL CHECK (purpose IN ('email', 'sms')),
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    factor_id    TEXT REFERENCES factors(id) ON DELETE CASCADE,
    code_mac     TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    sends        INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (session_hash, purpose),
    -- An SMS code names the phone it went to; a mailed code has none.
    CHECK ((purpose = 'sms' AND factor_id IS NOT NULL)
        OR (purpose = 'email' AND factor_id IS NULL))
);
-- Deleting a factor finds its codes without a scan.
CREATE INDEX session_codes_factor ON session_codes(factor_id);

-- Every code is carried over as it is (expired ones too: their `sends` still bound
-- the resends of their session), with its tries; the MACs stay valid.
INSERT INTO session_codes
    (session_hash, purpose, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
SELECT session_hash, 'email', account_id, NULL, code_mac, attempts, sends, created_at, expires_at
FROM email_codes;

INSERT INTO session_codes
    (session_hash, purpose, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
SELECT session_hash, 'sms', account_id, factor_id, code_mac, attempts, sends, created_at, expires_at
FROM sms_codes;

DROP TABLE email_codes;
DROP TABLE sms_codes;
