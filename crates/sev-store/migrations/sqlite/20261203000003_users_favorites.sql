-- Viewers who signed in, and the streamers they follow in sev. Every favorite of an active
-- user is in the subscription manager's desired set.
create table users (
    id           text primary key not null,
    login        text not null,
    display_name text not null,
    created_at   text not null,
    last_seen_at text not null
);

create table favorites (
    user_id     text not null references users (id) on delete cascade,
    streamer_id text not null,
    created_at  text not null,
    primary key (user_id, streamer_id)
);
create index favorites_streamer on favorites (streamer_id);
