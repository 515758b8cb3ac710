//! `hoard notify test [--to ADDR]`: sends a test message through every configured notifier
//! and says, per notifier, whether it arrived at the relay or URL.

use std::sync::Arc;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::Cli;
use super::context::{load_catalog, load_config, runtime_limits};
use super::output::outln;
use crate::notify::deliver::Retry;
use crate::notify::notice::admin_recipients;
use crate::notify::{Notice, NoticeKind, Notifiers};

/// `hoard notify ...`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through every configured notifier.
    Test(TestArgs),
}

/// Arguments of `hoard notify test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Send to this address instead of the admin's.
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs `hoard notify`.
pub async fn run(cli: &Cli, command: &NotifyCommand) -> anyhow::Result<()> {
    let NotifyCommand::Test(args) = command;
    let config = load_config(cli)?;
    let catalog = Arc::new(load_catalog(&config, true).await?);
    let notifiers = Notifiers::from_config(&config, catalog, runtime_limits(&config, None))?;
    if notifiers.is_empty() {
        bail!("no notifiers are configured (`notify: (notifiers: [...])` in hoard.ron)");
    }
    let recipients = match &args.to {
        Some(to) => vec![to.clone()],
        None => admin_recipients(config.notify_settings()),
    };
    let notice = Notice {
        kind: NoticeKind::Test,
        host: None,
        time: chrono::Utc::now().timestamp(),
        subject: "hoard: test message".into(),
        body: "This is a test message from hoard (`hoard notify test`).\nIf you read it, notifications reach you.\n".into(),
        recipients,
        facts: vec![("test".into(), "true".into())],
    };
    let mut failed = 0;
    for delivery in notifiers.deliver(&notice, Retry::FOREGROUND).await {
        match &delivery.result {
            Ok(()) => outln!("{}: sent", delivery.notifier),
            Err(e) => {
                failed += 1;
                outln!(
                    "{}: FAILED after {} attempts: {e}",
                    delivery.notifier,
                    delivery.attempts
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} notifier(s) failed");
    }
    Ok(())
}
