//! `spoor agent`: keep the configured firewall object in line with the decision ledger
//! (reconcile at start and every `[respond] reconcile_interval`, expire by TTL) until
//! SIGINT or SIGTERM. `--once` runs one pass and exits (cron, tests).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use spoor_responders::agent::Agent;
use spoor_responders::{agent, ledger, system};

use super::Context;
use super::sensor::{STOP, install_signal_handlers};

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// One reconcile pass, then exit
    #[arg(long)]
    once: bool,
}

pub(crate) fn run(ctx: &Context, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let cfg = &config.respond;
    let backend = agent::backend(cfg).context("opening the firewall backend")?;
    let facts = system::discover();
    tracing::debug!(?facts, "this host (never blocked)");
    let mut a = Agent::open(cfg, backend, &facts)
        .with_context(|| format!("opening the decision ledger {}", cfg.ledger.display()))?;
    if args.once {
        let r = a.pass(ledger::now())?;
        println!(
            "added {}, removed {}, expired {}, activated {}, refused {}",
            r.added.len(),
            r.removed.len(),
            r.expired,
            r.activated,
            r.refused.len()
        );
        for (t, why) in &r.refused {
            println!("refused {t}: {why}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    install_signal_handlers();
    tracing::info!(
        "agent started: ledger {}, every {}",
        cfg.ledger.display(),
        cfg.reconcile_interval
    );
    a.run(&STOP);
    tracing::info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}
