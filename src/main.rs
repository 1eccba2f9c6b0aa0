//! `spoor`: the one binary. Subcommands, flags and logging live here; the work is done by
//! the library crates. Subcommand bodies live in [`cmd`], one file per family; exit codes
//! are documented there (0 ok, 1 nothing found, 2 bad config or usage, 3 runtime error).

mod cmd;
mod config;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Network threat detection with safe, approved blocking on pf, nftables and OPNsense.
#[derive(Debug, Parser)]
#[command(name = "spoor", version, about)]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config file or print a commented default
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Download the threat feeds, or list them with their status
    #[command(subcommand)]
    Feeds(cmd::feeds::FeedsCommand),
    /// Compile the trail snapshot, look indicators up, show counts
    #[command(subcommand)]
    Trails(cmd::trails::TrailsCommand),
    /// Watch interfaces or read capture files, and report what matches the trails
    Sensor(cmd::sensor::SensorArgs),
    /// Write a deterministic benchmark capture
    Generate(cmd::generate::GenerateArgs),
    /// Run the server: sensor ingest, event store, API and dashboard
    Server(cmd::server::ServerArgs),
    /// Set a dashboard user's password (and role, scope); makes the user if new
    Passwd(cmd::server::PasswdArgs),
    /// Run server and sensor together with the defaults: the quickest start
    Up(cmd::server::UpArgs),
    /// Block, unblock, approve, reject and list decisions; flush is the kill switch
    #[command(subcommand)]
    Block(cmd::block::BlockCommand),
    /// Apply the decision ledger to the firewall and keep it in line
    Agent(cmd::agent::AgentArgs),
    /// Preflight: capture, trails, server, firewall backend and clock, each finding with its fix
    Doctor(cmd::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = logging::init(cli.global.verbosity());
    let ctx = cmd::Context::new(cli.global, logging);
    let result = match cli.command {
        Command::Config(command) => cmd::config::run(&ctx, command),
        Command::Feeds(command) => cmd::feeds::run(&ctx, command),
        Command::Trails(command) => cmd::trails::run(&ctx, command),
        Command::Sensor(args) => cmd::sensor::run(&ctx, args),
        Command::Generate(args) => cmd::generate::run(&ctx, args),
        Command::Server(args) => cmd::server::run_server(&ctx, args),
        Command::Passwd(args) => cmd::server::run_passwd(&ctx, args),
        Command::Up(args) => cmd::server::run_up(&ctx, args),
        Command::Block(command) => cmd::block::run(&ctx, command),
        Command::Agent(args) => cmd::agent::run(&ctx, args),
        Command::Doctor(args) => cmd::doctor::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("spoor: {}", cmd::error_message(&err));
            cmd::exit_code(&err)
        }
    }
}
