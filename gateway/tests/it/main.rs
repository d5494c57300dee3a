//! Integration tests: the real `gateway` binary on a free port, real plugin
//! components built from `tests/fixtures/plugins/` (`cargo xtask fixtures`),
//! real HTTP requests, assertions on the files written.

mod auth;
mod bad_input;
mod browser;
mod cli;
mod curl;
mod durability;
mod faults;
mod first_party;
mod ingest;
mod limits;
mod operations;
mod otlp;
mod production;
mod python;
mod reload;
mod sandbox;
mod sdks;
mod seeds;
mod servers;
mod shadow;
mod starter;
mod status_page;
mod support;
mod tls;
