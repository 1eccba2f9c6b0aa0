//! Stream reassembly: any sequence of pieces (offsets, lengths, overlaps, far-away
//! offsets) must never panic, must keep the first bytes received at every offset (checked
//! against a plain model), and the table must stay within its memory budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_core::Micros;
use spoor_sensor::reassembly::{Awaiting, Inserted, Reassembler, ReassemblyLimits, StreamBuf};

const CAP: usize = 2048;

fuzz_target!(|data: &[u8]| {
    // Part 1: one buffer against a model, 4 octets per piece: offset (u16), length, fill.
    let mut buf = StreamBuf::with_storage(Vec::new(), CAP);
    let mut model: Vec<Option<u8>> = vec![None; CAP];
    for (n, op) in data.chunks_exact(4).enumerate() {
        let offset = u64::from(u16::from_le_bytes([op[0], op[1]])) % (CAP as u64 + 64);
        let bytes: Vec<u8> = (0..op[2])
            .map(|i| op[3].wrapping_add(i).wrapping_add(n as u8))
            .collect();
        match buf.insert(offset, &bytes) {
            Inserted::TooManyPieces => {}
            _ => {
                for (i, &b) in bytes.iter().enumerate() {
                    if let Some(slot) = model.get_mut(offset as usize + i) {
                        slot.get_or_insert(b);
                    }
                }
            }
        }
        let contiguous = buf.contiguous();
        let expected: Vec<u8> = model.iter().map_while(|b| *b).collect();
        assert_eq!(contiguous, &expected[..]);
        assert!(contiguous.len() <= CAP);
    }

    // Part 2: a small table driven by the same bytes: open, feed, close, expire. Spare
    // buffers (at most 64 of a client stream's cap) are the only memory past the budget.
    let limits = ReassemblyLimits {
        client_bytes: 1024,
        server_bytes: 4096,
        memory: 16 * 1024,
        timeout_micros: 1_000,
    };
    let mut table = Reassembler::new(limits);
    for (n, op) in data.chunks_exact(3).enumerate() {
        let key = u64::from(op[0] % 16);
        let now = Micros(n as i64 * 100);
        match op[1] % 5 {
            0 => {
                let awaiting = if op[2] % 2 == 0 {
                    Awaiting::ClientHello
                } else {
                    Awaiting::ServerCertificate
                };
                let _ = table.open(key, awaiting, u32::from(op[2]) << 24, now);
            }
            1 | 2 => {
                if let Some(mut s) = table.take(key) {
                    let seq = s.base.wrapping_add(u32::from(op[2]) * 97);
                    let _ = s.add_segment(seq, &[op[2]; 300]);
                    s.seen(now);
                    table.put_back(key, s);
                }
            }
            3 => {
                table.close(key);
            }
            _ => table.expire(now),
        }
        assert!(table.reserved() <= limits.memory);
        assert!(table.allocated() <= limits.memory + 64 * limits.client_bytes);
    }
});
