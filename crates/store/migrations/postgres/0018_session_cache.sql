-- A node keeps the sessions and portal tokens it looked up for a few seconds
-- (the store's session_cache). A write to any table such a lookup reads tells
-- every node at its commit, so that none serves what the write changed: a
-- statement-level trigger notifies the channel each node listens on (one
-- notification per transaction, as PostgreSQL folds equal ones). In step with
-- migrations/sqlite/0018_session_cache.sql.
CREATE FUNCTION tweestap_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tweestap_changed', 'write');
    RETURN NULL;
END
$$;

CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON sessions FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON accounts FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON factors FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON remembered_devices FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON recovery_codes FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oidc_consents FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oidc_tokens FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
CREATE TRIGGER tweestap_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oidc_clients FOR EACH STATEMENT EXECUTE FUNCTION tweestap_changed();
