-- Fixed-window request counters per client (e.g. `auth:ip:203.0.113.7`), for the
-- routes that write without a signed-in user (sign-in starts).
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
);
