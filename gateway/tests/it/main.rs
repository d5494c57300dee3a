//! Integration tests: the real `gateway` binary on a free port, real plugin
//! components built from `tests/fixtures/plugins/` (`cargo xtask fixtures`),
//! real HTTP requests, assertions on the files written.

mod cli;
mod durability;
mod faults;
mod first_party;
mod ingest;
mod production;
mod python;
mod reload;
mod sandbox;
mod sdks;
mod servers;
mod starter;
mod support;
