//! HTTP/1.x: request and response heads must never panic; derived fields stay in bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_sensor::proto::http;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = http::parse_request(data) {
        assert!(req.head_len <= data.len());
        let _ = (req.path(), req.query(), req.url(), req.headers().count());
    }
    if let Ok(resp) = http::parse_response(data) {
        assert!(resp.head_len <= data.len());
        let _ = resp.headers().count();
    }
});
