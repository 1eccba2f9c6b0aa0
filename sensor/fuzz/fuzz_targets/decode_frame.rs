//! Fuzz the decoder: the first byte picks the link type, the rest is the frame. The frame
//! is decoded twice by one decoder so that fragment paths (store, then duplicate) run too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoor_core::Micros;
use spoor_sensor::decode::{Decoder, LinkType};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let linktype = LinkType::SUPPORTED
        .get(usize::from(pick) % (LinkType::SUPPORTED.len() + 1))
        .map_or(127, |l| l.0);
    let mut decoder = Decoder::default();
    for _ in 0..2 {
        let _ = decoder.decode(linktype, Micros(0), frame);
    }
});
