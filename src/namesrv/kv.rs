//! The name server's namespaced key/value store (KV config, spec §2.2):
//! PUT/GET/DELETE_KV_CONFIG and GET_KVLIST_BY_NAMESPACE operate on it, and the
//! `ORDER_TOPIC_CONFIG` namespace feeds `orderTopicConf` in routes.
//!
//! In memory only: Java persists it to `kvConfig.json`, but nothing a client
//! or broker does depends on it surviving a restart.

use std::collections::BTreeMap;

/// Namespace → key → value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvConfig {
    table: BTreeMap<String, BTreeMap<String, String>>,
}

impl KvConfig {
    /// Sets `namespace`/`key` to `value`.
    pub fn put(&mut self, namespace: &str, key: &str, value: &str) {
        self.table
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
    }

    /// The value of `namespace`/`key`.
    pub fn get(&self, namespace: &str, key: &str) -> Option<&str> {
        self.table.get(namespace)?.get(key).map(String::as_str)
    }

    /// Removes `namespace`/`key`. An emptied namespace stays, as in Java, so
    /// listing it afterwards gives an empty table rather than "not found".
    pub fn delete(&mut self, namespace: &str, key: &str) {
        if let Some(entries) = self.table.get_mut(namespace) {
            entries.remove(key);
        }
    }

    /// Every entry of `namespace`, or `None` if it was never written.
    pub fn namespace(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.table.get(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_list() {
        let mut kv = KvConfig::default();
        assert_eq!(kv.get("ns", "k"), None);
        assert!(kv.namespace("ns").is_none());
        kv.put("ns", "k", "v1");
        kv.put("ns", "k", "v2");
        kv.put("ns", "j", "");
        assert_eq!(kv.get("ns", "k"), Some("v2"));
        assert_eq!(kv.namespace("ns").map(BTreeMap::len), Some(2));
        kv.delete("ns", "k");
        kv.delete("ns", "j");
        kv.delete("other", "k");
        assert_eq!(kv.get("ns", "k"), None);
        assert_eq!(kv.namespace("ns").map(BTreeMap::len), Some(0));
    }
}
