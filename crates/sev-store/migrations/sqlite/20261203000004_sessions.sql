-- Sign-ins in progress: the OAuth `state` and (hashed) the browser nonce it is bound to.
create table login_states (
    state      text primary key not null,
    browser    text not null,
    return_to  text not null,
    created_at text not null
);

-- Signed-in browsers. `id` is the SHA-256 of the cookie value, so a copy of the database
-- does not hold usable cookies; the Twitch tokens are sealed by the app before they get here.
create table sessions (
    id               text primary key not null,
    user_id          text not null references users (id) on delete cascade,
    csrf             text not null,
    access_token     text not null,
    refresh_token    text not null,
    token_expires_at text not null,
    scopes           text not null,
    created_at       text not null,
    validated_at     text not null
);
create index sessions_user on sessions (user_id);
create index sessions_validated on sessions (validated_at);
