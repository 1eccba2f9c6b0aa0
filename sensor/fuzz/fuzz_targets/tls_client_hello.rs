//! TLS: record walking, reassembly, ClientHello/server flight parsing and fingerprints
//! must never panic, and `client_hello_needs` must agree with the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_sensor::proto::tls;

fuzz_target!(|data: &[u8]| {
    let needed = tls::client_hello_needs(data);
    let mut scratch = Vec::new();
    if let Ok(payload) = tls::handshake_payload(data, &mut scratch) {
        if let Ok(hello) = tls::parse_client_hello(payload) {
            let _ = tls::ja3_string(&hello);
            let _ = tls::ja4(&hello, tls::Transport::Tcp);
        }
        let _ = tls::parse_server_flight(payload);
    }
    if let tls::Needed::Complete { stream_len } = needed {
        assert!(stream_len <= data.len());
    }
    // Also as a bare handshake message.
    if let Ok(hello) = tls::parse_client_hello(data) {
        let _ = tls::ja4(&hello, tls::Transport::Quic);
    }
});
