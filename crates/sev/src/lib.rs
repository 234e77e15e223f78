//! The sev web service: configuration, HTTP routes, and the wiring of storage, bus and
//! Twitch. `main.rs` only parses the command line and calls in here; tests build the same
//! [`startup::App`] on port 0.

pub mod chat;
pub mod cli;
pub mod config;
pub mod connector;
pub mod demo;
pub mod events;
pub mod live;
pub mod metrics;
pub mod retention;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod trigger;
pub mod web;
pub mod workers;
