//! `spoor agent`: keep the configured firewall object in line with the decisions until
//! SIGINT or SIGTERM. Without `[agent] server` the decisions come from the local ledger
//! (reconcile at start and every `[respond] reconcile_interval`, expire by TTL); with it,
//! the agent follows that server's decision stream and reports back. `--once` runs one
//! pass and exits (cron, tests).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use spoor_responders::agent::Agent;
use spoor_responders::agent::client::ServerClient;
use spoor_responders::agent::config::RemoteConfig;
use spoor_responders::agent::remote::{self, RemoteAgent};
use spoor_responders::config::RespondConfig;
use spoor_responders::{HostFacts, agent, ledger, system};

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
    if let Some(remote) = &config.agent.remote {
        return run_remote(cfg, remote, backend, &facts, args.once);
    }
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

fn run_remote(
    cfg: &RespondConfig,
    remote: &RemoteConfig,
    backend: Box<dyn spoor_responders::Backend>,
    facts: &HostFacts,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let client = ServerClient::new(remote)?;
    let conn = remote::open_local(cfg).with_context(|| {
        format!(
            "opening the local ledger {} (where the agent records the entries it added)",
            cfg.ledger.display()
        )
    })?;
    let mut a = RemoteAgent::new(conn, cfg, remote, backend, facts);
    if once {
        let snapshot = client.decisions(None)?;
        a.receive(snapshot);
        let p = a.pass(ledger::now())?;
        let ack = client.report(&p.report)?;
        println!(
            "added {}, removed {}, activated {}, refused {}, held back {}",
            p.added.len(),
            p.removed.len(),
            ack.activated.len(),
            p.report.refused.len(),
            p.held_back
        );
        for r in &p.report.refused {
            println!("refused decision {}: {}", r.id, r.reason);
        }
        return Ok(ExitCode::SUCCESS);
    }
    install_signal_handlers();
    tracing::info!(
        "agent started: following {} (long poll {}), reconciling at least every {}",
        remote.server,
        remote.wait,
        cfg.reconcile_interval
    );
    a.run(client, remote, &STOP);
    tracing::info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}
