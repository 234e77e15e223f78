-- Broadcaster mode: a streamer (or one of their moderators) granted sev the consent tier's
-- scopes for that channel. Consent-tier events of the channel are shown to these users only.
create table consent_grants (
    user_id     text not null references users (id) on delete cascade,
    streamer_id text not null,
    scopes      text not null,
    created_at  text not null,
    primary key (user_id, streamer_id)
);
create index consent_grants_streamer on consent_grants (streamer_id);

-- The channel a sign-in turns broadcaster mode on for, if any.
alter table login_states add column consent_for text;
