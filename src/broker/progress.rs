//! Progress files of the staging services (delay/timer delivery marks,
//! transaction low marks): small JSON documents under `<store>/config/`
//! that may only ever count what the store has made durable.

use std::path::Path;

use rocketcore_storage::ShardStore;
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
    crate::broker::meta::write_atomically(path, &bytes)
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
