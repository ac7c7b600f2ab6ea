-- One row per running relay node, by its [queue] node name (the owner
-- name of its leases): the process holding the name (instance, a ULID per
-- process) and when it last said it was alive. A node starting with a name
-- another process refreshed within twice the heartbeat is refused; a name
-- not seen for that long is free, and the node taking it hands the leases
-- it held before (a kill -9) back to the queue at once.
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
