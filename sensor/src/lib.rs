//! The sensor: packets in, events out.
//!
//! `decode` turns link-layer frames into network/transport facts (never panicking, every
//! bad packet counted by reason), `proto` parses DNS, HTTP and TLS from payloads, `output`
//! renders and ships events, `generator` writes deterministic benchmark captures.

pub mod generator;
