//! Shared scaffolding for the store's scenario tests: an executor to run
//! in, a small store configuration that exercises roll-over, eviction and
//! index sealing with little data, and an environment the test controls.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rocketcore_storage::{
    Appended, Durability, Environment, IoOp, MessageDraft, ShardStore, StoreConfig, StoreError,
};

pub const SEGMENT_BYTES: u64 = 256 << 10;

pub fn run<T: 'static>(f: impl Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::default()
        .io_memory(512 << 10)
        .make()
        .expect("glommio executor (io_uring and RLIMIT_MEMLOCK)")
        .run(f)
}

/// A fresh directory on the target's disk (O_DIRECT wants a real filesystem).
pub fn store_dir(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

pub fn small_config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir, "127.0.0.1:10911".parse().unwrap());
    c.segment_bytes = SEGMENT_BYTES;
    c.max_message_bytes = 64 << 10;
    c.flush_interval_ms = 10;
    c.checkpoint_interval_ms = 50;
    c.write_buffer_bytes = 1 << 20;
    c.tail_cache_bytes = 64 << 10;
    c.write_io_bytes = 64 << 10;
    c.cq_entries_per_file = 100;
    c.cq_tail_entries = 16;
    c.index_slots = 64;
    c.index_entries = 200;
    // What a test keeps must not depend on how full the host's disk is:
    // with the real environment, RocketMQ's ratios (75/85/90 %) would make
    // a busy build machine delete or refuse these tests' records. Tests of
    // disk pressure set the ratios they exercise.
    c.disk_max_used_ratio = 1.0;
    c.disk_force_clean_ratio = 1.0;
    c.disk_full_ratio = 1.0;
    c.retention_check_interval_ms = 3_600_000;
    c
}

pub fn draft<'a>(body: &'a [u8], props: &'a [u8]) -> MessageDraft<'a> {
    MessageDraft {
        flag: 0,
        body,
        properties: props,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: "127.0.0.1:40000".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    }
}

/// Body `i` of a test sequence: recognisable, of varying length.
pub fn body_for(i: u64) -> Vec<u8> {
    let len = 40 + (i * 37 % 300) as usize;
    let mut b = format!("message-{i:08}-").into_bytes();
    b.resize(len, b'a' + (i % 26) as u8);
    b
}

pub fn props_for(i: u64) -> Vec<u8> {
    let tag = if i.is_multiple_of(3) { "TagA" } else { "TagB" };
    format!("TAGS\x01{tag}\x02KEYS\x01key-{i} all\x02UNIQ_KEY\x01U{i:031}\x02").into_bytes()
}

/// The environment a test steers: clock offset, hour, disk usage, failpoints.
#[derive(Default)]
pub struct TestEnv {
    pub advance_ms: Cell<i64>,
    pub hour: Cell<u32>,
    pub used_ratio: Cell<f64>,
    pub fail: RefCell<Vec<IoOp>>,
    /// Operations that fail with ENOSPC.
    pub no_space: RefCell<Vec<IoOp>>,
}

impl TestEnv {
    pub fn new() -> Rc<TestEnv> {
        Rc::new(TestEnv {
            hour: Cell::new(12),
            used_ratio: Cell::new(0.10),
            ..Default::default()
        })
    }
}

impl Environment for TestEnv {
    fn now_ms(&self) -> i64 {
        rocketcore_storage::SystemEnvironment.now_ms() + self.advance_ms.get()
    }
    fn local_hour(&self) -> u32 {
        self.hour.get()
    }
    fn disk_used_ratio(&self, _path: &Path) -> io::Result<f64> {
        Ok(self.used_ratio.get())
    }
    fn failpoint(&self, op: IoOp) -> io::Result<()> {
        if self.no_space.borrow().contains(&op) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        if self.fail.borrow().contains(&op) {
            Err(io::Error::other(format!("injected {op:?} failure")))
        } else {
            Ok(())
        }
    }
}

pub fn commitlog_dir(root: &Path) -> PathBuf {
    root.join("shard-0").join("commitlog")
}

pub fn segment_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(commitlog_dir(root))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A buffered append from a task that never yields: on backpressure it
/// flushes itself (the flusher task cannot run) and tries once more.
pub async fn append_buffered(
    store: &ShardStore,
    topic: &str,
    queue: i32,
    d: MessageDraft<'_>,
) -> Appended {
    match store.append(topic, queue, &[d], Durability::Buffered).await {
        Err(StoreError::Busy { .. }) => {
            store.flush().await.unwrap();
            store
                .append(topic, queue, &[d], Durability::Buffered)
                .await
                .unwrap()
        }
        other => other.unwrap(),
    }
}
