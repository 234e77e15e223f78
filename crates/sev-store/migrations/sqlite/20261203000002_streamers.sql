-- Streamers sev has seen (from events and from Twitch lookups), to find a channel by login.
create table streamers (
    id           text primary key not null,
    login        text not null,
    display_name text not null,
    updated_at   text not null
);
create index streamers_login on streamers (login);
