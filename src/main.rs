//! `spoor`: the one binary. Subcommands, flags and logging live here; the work is done by
//! the library crates.

fn main() {
    println!("spoor {}", env!("CARGO_PKG_VERSION"));
}
