-- Operators' console sessions (SPEC "The console"). The cookie holds a
-- random id; only its SHA-256 (hex) is kept here, so a copy of the store
-- signs nobody in. `operator` is the name in [[http.operator]]: the role is
-- read from the configuration at each request, so a demoted or removed
-- operator's session loses its rights at the next reload. `csrf` is the
-- token every form of the session carries. Rows past their idle or absolute
-- expiry are deleted when the next session opens; sign-out deletes its row.
-- In the store (not in a node's memory): every node of a cluster knows
-- every session, and a restart signs nobody out.
CREATE TABLE operator_sessions (
    id_hash     TEXT PRIMARY KEY,
    operator    TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL,
    ip          TEXT,
    user_agent  TEXT
);
CREATE INDEX operator_sessions_seen ON operator_sessions (seen_at);
