//! 100,000 entries applied to an nftables set in one batch, inside a network namespace
//! this benchmark creates (and removes). Needs root and nft.
//!
//! Run: `cargo bench -p spoor-responders --bench nft_batch`

use std::process::Command;
use std::time::Instant;

use ipnet::IpNet;
use spoor_responders::backend::nftables::{NftBackend, NftSettings};
use spoor_responders::{Backend, Changes};

/// Entries in the batch (`SPOOR_BENCH_ENTRIES` overrides).
const ENTRIES: u32 = 100_000;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn main() {
    let entries: u32 = std::env::var("SPOOR_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ENTRIES);
    let ns = Netns(format!("spoor-bench-{}", std::process::id()));
    let st = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap();
    assert!(st.success(), "ip netns add failed (root needed)");
    let mut nft = NftBackend::new(NftSettings {
        command: ["ip", "netns", "exec", &ns.0, "nft"]
            .iter()
            .map(Into::into)
            .collect(),
        family: "inet".into(),
        table: "spoor".into(),
        set_v4: "block_v4".into(),
        set_v6: "block_v6".into(),
        create: true,
        capacity: 1_000_000,
    })
    .unwrap();
    // Spread over 45.0.0.0/8 with gaps, so nft stores 100,000 separate intervals.
    let add: Vec<IpNet> = (0..entries)
        .map(|i| {
            IpNet::from(std::net::IpAddr::from(
                (45u32 << 24 | (i * 2 + 1)).to_be_bytes(),
            ))
        })
        .collect();
    let expires_in = add.iter().map(|t| (*t, 3600)).collect();
    let changes = Changes {
        add,
        remove: vec![],
        expires_in,
    };
    let t = Instant::now();
    nft.apply(&changes).unwrap();
    let applied = t.elapsed();
    println!("add batch: {:.3} s", applied.as_secs_f64());
    let t = Instant::now();
    let held = nft.list().unwrap();
    let listed = t.elapsed();
    println!("list: {:.3} s", listed.as_secs_f64());
    assert_eq!(held.len(), entries as usize);
    // Deletions are not measured: nft 1.0.6 took minutes to delete 10,000 interval
    // elements in one batch here (see BENCHMARKS.md); the namespace goes with the set.
    println!(
        "nft set, {entries} entries with timeouts: add batch {:.3} s ({:.1} µs/entry), list {:.3} s",
        applied.as_secs_f64(),
        applied.as_secs_f64() * 1e6 / f64::from(entries),
        listed.as_secs_f64()
    );
}
