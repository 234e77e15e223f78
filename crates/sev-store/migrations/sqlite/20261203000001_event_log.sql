-- The per-streamer event log. Timestamps are UTC text in one fixed format
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ) so that text order is time order.

-- The last cursor handed out per streamer. Cursors are dense: 1, 2, 3, ...
create table streamer_cursors (
    streamer_id text primary key not null,
    last_seq    integer not null
);

create table events (
    streamer_id text not null,
    seq         integer not null,
    id          text not null unique,
    kind        text not null,
    occurred_at text not null,
    received_at text not null,
    dedupe_key  text,
    payload     text not null,
    primary key (streamer_id, seq)
);
create index events_received_at on events (received_at);

-- Keys of everything stored (EventSub message ids, semantic keys), so a redelivery
-- is recognised across restarts and instances. `seq` is the event it produced.
create table event_dedupe (
    key         text primary key not null,
    streamer_id text not null,
    seq         integer,
    created_at  text not null
);
create index event_dedupe_created_at on event_dedupe (created_at);
