//! Progress of the staging services (delay/timer delivery marks,
//! transaction low marks): small JSON documents under `<store>/config/`
//! that may only ever count what the store has made durable, and the walk
//! over a staging queue's units that rebuilds state past them.

use std::ops::ControlFlow;
use std::path::Path;

use rocketcore_storage::{CqUnit, ShardStore, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The saved progress at `path`, or the default when there is none yet.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| format!("{} is not valid: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Flushes the store, then replaces `path` with `value`: the marks written
/// never run ahead of the records they count.
pub async fn save_after_flush<T: Serialize>(
    store: &ShardStore,
    path: &Path,
    value: &T,
) -> Result<(), String> {
    store.flush().await.map_err(|e| e.to_string())?;
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    crate::broker::file_writer::global()
        .write(path, bytes)
        .done()
        .await
}

/// Units read per step of `scan_units`.
const SCAN_STEP: usize = 4096;

/// Walks the units of queue `queue_id` of `topic` from `from` (or the
/// queue's start, if later) to its end, handing each with its offset to
/// `visit` until it breaks. Returns the offset it stopped at: the unit
/// `visit` broke on, or the end.
pub async fn scan_units(
    store: &ShardStore,
    topic: &str,
    queue_id: i32,
    from: u64,
    mut visit: impl FnMut(u64, &CqUnit) -> ControlFlow<()>,
) -> Result<u64, StoreError> {
    let max = store.max_offset(topic, queue_id);
    let mut at = from.max(store.min_offset(topic, queue_id));
    while at < max {
        let units = store.units(topic, queue_id, at, SCAN_STEP).await?;
        if units.is_empty() {
            break;
        }
        for u in &units {
            if visit(at, u).is_break() {
                return Ok(at);
            }
            at += 1;
        }
    }
    Ok(at)
}
