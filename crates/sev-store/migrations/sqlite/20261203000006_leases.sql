-- Work that must have exactly one owner across instances (a conduit shard's WebSocket, the
-- chat readers, the subscription reconciler), and every live instance's heartbeat. A lease
-- is taken only once expired; each taking increments its fence.
create table leases (
    name       text primary key not null,
    holder     text not null,
    fence      bigint not null,
    expires_at text not null
);
