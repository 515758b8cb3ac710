//! `hoard keep HOST:N [--off]`: flags a backup so retention never removes it (or clears the
//! flag).

use clap::Args;

use super::Cli;
use super::context::{Context, HostSpec};
use super::output::outln;

/// Arguments of `hoard keep`.
#[derive(Debug, Args)]
pub struct KeepArgs {
    /// The backup, `HOST:N` (or `HOST` for its latest).
    pub backup: HostSpec,
    /// Clear the flag instead.
    #[arg(long)]
    pub off: bool,
}

/// Runs `hoard keep`.
pub fn run(cli: &Cli, args: &KeepArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let id = context.resolve_spec(&args.backup)?;
    context.pool.set_keep(&id, !args.off)?;
    outln!(
        "{}:{} {}",
        id.host,
        id.number,
        if args.off {
            "may expire again"
        } else {
            "is kept: retention will not remove it"
        }
    );
    Ok(())
}
