//! sev's integration tests: one binary, the real app on port 0.

mod cli;
mod crash;
mod eventsub;
mod faults;
mod feed;
mod helpers;
mod ops;
mod outages;
mod pipeline;
mod scale;
mod twitch;
mod web;
