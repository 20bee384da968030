-- The roll-out's daily counts also keep the accounts whose only second factor is a
-- passkey (before passkeys there were none: 0). In step with
-- migrations/postgres/0017_rollout_passkeys.sql.
ALTER TABLE rollout_days ADD COLUMN passkey_only INTEGER NOT NULL DEFAULT 0;
