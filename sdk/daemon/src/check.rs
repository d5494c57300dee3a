//! `wraith-daemon test --endpoint URL`: does the gateway answer, and if
//! not, what is wrong (DNS, refused, TLS, timeout, 401, another 4xx with
//! the gateway's message).

use crate::send::{Client, describe, message};
use std::time::Duration;

/// Check the endpoint; prints what it found. `Ok(())` when the gateway
/// takes batches, `Err(what is wrong)` otherwise.
pub fn check(endpoint: &str, timeout: Duration, token: Option<String>) -> Result<String, String> {
    let client = Client::new(endpoint, timeout, token);
    let url = client.url().to_string();
    // An empty batch: the gateway parses and answers it, and stores nothing.
    match client.post(b"") {
        Err(e) => Err(describe(&e, &url)),
        // The gateway refuses an empty batch with 400 `empty_batch` (or
        // `empty_body`): it is there, reads requests, and would take events.
        Ok((400, _, body)) if is_empty_refusal(&body) => {
            Ok(format!("ok: {url} is a Wraith gateway and takes events"))
        }
        Ok((status, _, _)) if (200..300).contains(&status) => {
            Ok(format!("ok: {url} answered {status} to an empty batch"))
        }
        Ok((401, _, body)) | Ok((403, _, body)) => Err(format!(
            "{url} refused the credentials{}: set --token or WRAITH_TOKEN to a token the gateway accepts",
            message(&body)
        )),
        Ok((404, _, body)) => Err(format!(
            "{url} answered 404{}: no events endpoint there; is this a Wraith gateway, and is the URL its base (http://host:port)?",
            message(&body)
        )),
        Ok((status, _, body)) => Err(format!("{url} answered {status}{}", message(&body))),
    }
}

fn is_empty_refusal(body: &[u8]) -> bool {
    serde_json::from_slice::<wraith_event::wire::ErrorBody>(body)
        .is_ok_and(|e| matches!(e.error.code.as_str(), "empty_batch" | "empty_body"))
}
