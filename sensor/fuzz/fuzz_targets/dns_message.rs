//! DNS: message parsing, lazy section walks and TCP splitting must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_sensor::proto::dns;

fuzz_target!(|data: &[u8]| {
    let _ = dns::is_probably_dns(data);
    if let Ok(msg) = dns::parse_message(data) {
        let _ = msg.questions().count();
        let _ = msg.answers().count();
    }
    for part in dns::split_tcp_messages(data).flatten() {
        let _ = dns::parse_message(part);
    }
});
