//! SQL92 filter expressions: parse, then evaluate against properties made
//! from the same input. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketcore::filter::{RawProperties, Sql92Filter};

fuzz_target!(|data: &[u8]| {
    let (expr, props) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"a\x0110\x02b\x01x\x02"[..]),
    };
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    if let Ok(f) = Sql92Filter::compile(expr) {
        let _ = f.matches(&RawProperties(props));
    }
});
