-- PostgreSQL's 0018 makes writes to the tables a session lookup reads notify the
-- other nodes, whose session caches they void. SQLite has one node and no
-- session cache (its lookups are in-process): nothing to change here. The file
-- keeps the two directories in step with migrations/postgres/0018_session_cache.sql.
SELECT 1;
