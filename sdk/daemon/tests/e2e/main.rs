//! End-to-end tests of the client side, one test binary (link once): real
//! gateway processes with the first-party plugins and the file sink, the
//! real daemon, the example tool and the Python client, all on loopback and
//! in temporary folders.
//!
//! Needs the gateway binary (`cargo build -p wraith-gateway`, or
//! `WRAITH_GATEWAY_BIN`), the first-party plugins (`cargo xtask plugins`,
//! or `WRAITH_PLUGINS_DIR`), the example tool (`cargo build -p sdk-tool`, or
//! `WRAITH_SDK_TOOL_BIN`) and python3. A missing one fails the test with
//! what to run; nothing is skipped.

mod daemon;
mod python;
mod rust_sdk;
mod support;
