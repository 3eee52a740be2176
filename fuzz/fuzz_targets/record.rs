//! Stored records as recovery and pulls read them: parse, then every
//! accessor and both checksums. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketcore_storage::RecordView;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = RecordView::parse(data) {
        let _ = v.verify_crc();
        let _ = v.verify_record_crc(true);
        let _ = (
            v.topic(),
            v.body(),
            v.properties(),
            v.queue_id(),
            v.queue_offset(),
        );
        let _ = v.tags_code();
        let _ = rocketcore_storage::properties::index_keys(v.properties()).count();
    }
});
