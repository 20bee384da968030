-- A node keeps the signed-in sessions and the portal tokens it looked up for a
-- few seconds (the store's session_cache). A write that can change what such a
-- lookup read tells every node at its commit, so that none serves it stale:
-- these triggers notify the channel each node listens on (one notification per
-- transaction, as PostgreSQL folds equal ones).
--
-- Notifying commits are serialised by PostgreSQL, so the busy writes that no
-- kept lookup depends on do not notify: new rows of sessions, accounts and
-- tokens (a lookup that found nothing is not kept), sessions not yet signed in
-- (not kept), and the counters and times the code step writes (accounts'
-- failure counters, lock-outs and last sign-in; factors' last use and last
-- step), which nothing read from a kept lookup decides on. The checks are in
-- the functions' bodies, not in column lists or WHEN clauses, which would stop
-- later migrations from altering those columns. In step with
-- migrations/sqlite/0018_session_cache.sql.

-- Notifies, but for a row's UPDATE that changed only the columns named as the
-- trigger's arguments.
CREATE FUNCTION tweestap_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_OP = 'UPDATE'
       AND (to_jsonb(OLD) - TG_ARGV) = (to_jsonb(NEW) - TG_ARGV) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('tweestap_changed', 'write');
    RETURN NULL;
END
$$;

-- Notifies for a signed-in session changed or deleted.
CREATE FUNCTION tweestap_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.stage = 'authenticated' THEN
        PERFORM pg_notify('tweestap_changed', 'write');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tweestap_changed_rows AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION tweestap_session_changed();
CREATE TRIGGER tweestap_changed AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();

CREATE TRIGGER tweestap_changed_rows AFTER UPDATE ON accounts FOR EACH ROW
    EXECUTE FUNCTION tweestap_changed('code_failures', 'code_locked_until',
        'password_failures', 'password_locked_until', 'last_sign_in_at');
CREATE TRIGGER tweestap_changed AFTER DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();

CREATE TRIGGER tweestap_changed_rows AFTER UPDATE ON factors FOR EACH ROW
    EXECUTE FUNCTION tweestap_changed('last_used_at', 'last_step');
CREATE TRIGGER tweestap_changed AFTER INSERT OR DELETE OR TRUNCATE ON factors
    FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();

CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON remembered_devices FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON recovery_codes FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oidc_consents FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER UPDATE OR DELETE OR TRUNCATE
    ON oidc_tokens FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oidc_clients FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
