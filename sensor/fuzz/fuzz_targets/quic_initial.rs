//! QUIC: header parsing, Initial decryption (with and without a valid tag), CRYPTO frame
//! walking and the ClientHello inside must never panic; frames stay inside the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_sensor::proto::{quic, tls};

fuzz_target!(|data: &[u8]| {
    let _ = quic::may_be_client_initial(data);
    let mut scratch = Vec::new();
    let mut rest = data;
    for _ in 0..quic::MAX_COALESCED {
        let Ok(header) = quic::parse_initial_header(rest) else {
            break;
        };
        assert!(header.end <= rest.len());
        if let Ok(opened) = quic::open_initial(rest, &mut scratch) {
            assert!(opened.payload.len() < header.end);
            let mut crypto = Vec::new();
            let _ = quic::for_each_crypto_frame(opened.payload, |offset, bytes| {
                if offset == crypto.len() as u64 {
                    crypto.extend_from_slice(bytes);
                }
            });
            if let Ok(hello) = tls::parse_client_hello(&crypto) {
                let _ = tls::ja4(&hello, tls::Transport::Quic);
            }
        }
        rest = &rest[header.end..];
    }
    // The input as a decrypted payload, too.
    let _ = quic::for_each_crypto_frame(data, |offset, bytes| {
        assert!(offset.checked_add(bytes.len() as u64).is_some());
    });
});
