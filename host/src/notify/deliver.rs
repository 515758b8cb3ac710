//! Delivering notices through the configured notifier plugins. Each notifier gets each
//! notice on its own; a failure is retried with exponential backoff and logged, and never
//! reaches the job that caused the notice. The server hands notices to a [`Dispatcher`]
//! (a bounded queue and a task), so a relay that is down cannot slow a backup.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::notice::{Notice, sender};
use crate::config::Config;
use crate::config::ConfigError;
use crate::plugin::imports::notifier::NotifierTarget;
use crate::plugin::{
    CapabilityGrant, JobContext, LoadedPlugin, PluginCatalog, PluginKind, RuntimeLimits,
};

/// Notices waiting in the server's queue at most; more are dropped with a warning.
const QUEUE: usize = 64;

/// Why the notifiers cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A notifier names a plugin that is not loaded, or not a notifier.
    #[error("notifier {0:?}: no notifier plugin of that name is loaded (see `hoard plugin list`)")]
    NoPlugin(String),
    /// Its secret cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One configured notifier.
pub struct Notifier {
    /// The plugin's name.
    pub name: String,
    plugin: Arc<LoadedPlugin>,
    grant: CapabilityGrant,
    target: NotifierTarget,
}

/// How one notice went through one notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The notifier.
    pub notifier: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's outcome.
    pub result: Result<(), String>,
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each.
    pub first_delay: Duration,
}

impl Retry {
    /// The server's patience: five attempts over about half a minute.
    pub const BACKGROUND: Retry = Retry {
        attempts: 5,
        first_delay: Duration::from_secs(2),
    };
    /// A command's patience: three attempts over three seconds.
    pub const FOREGROUND: Retry = Retry {
        attempts: 3,
        first_delay: Duration::from_secs(1),
    };
}

/// The configured notifiers.
pub struct Notifiers {
    list: Vec<Notifier>,
    catalog: Arc<PluginCatalog>,
    limits: RuntimeLimits,
    sender: String,
}

impl Notifiers {
    /// The notifiers of `config`, from `catalog`.
    pub fn from_config(
        config: &Config,
        catalog: Arc<PluginCatalog>,
        limits: RuntimeLimits,
    ) -> Result<Notifiers, NotifyError> {
        let settings = config.notify_settings();
        let mut list = Vec::new();
        for entry in &settings.notifiers {
            let plugin = catalog
                .get(&entry.plugin)
                .filter(|p| p.kind == PluginKind::Notifier)
                .cloned()
                .ok_or_else(|| NotifyError::NoPlugin(entry.plugin.clone()))?;
            let mut grant = CapabilityGrant {
                endpoint: entry.endpoint.is_some(),
                http: entry.url.is_some(),
                ..CapabilityGrant::default()
            };
            if let Some(secret) = &entry.secret {
                grant.secrets.insert("smtp".into(), secret.read("smtp")?);
            }
            let grant = grant.restricted_to(&plugin.info.capabilities);
            list.push(Notifier {
                name: entry.plugin.clone(),
                plugin,
                grant,
                target: NotifierTarget {
                    endpoint: entry.endpoint.clone(),
                    url: entry.url.clone(),
                },
            });
        }
        Ok(Notifiers {
            list,
            catalog,
            limits,
            sender: sender(settings),
        })
    }

    /// Whether any notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The notifiers' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|n| n.name.as_str())
    }

    async fn attempt(&self, notifier: &Notifier, notice: &Notice) -> Result<(), String> {
        let context = JobContext {
            host: notice.host.clone().unwrap_or_default(),
            grant: notifier.grant.clone(),
            notifier_target: notifier.target.clone(),
            ..JobContext::default()
        };
        let run = notifier
            .plugin
            .notify(
                self.catalog.engine(),
                &self.limits,
                notice.to_event(&self.sender),
                context,
            )
            .await;
        run.result.map_err(|e| e.to_string())
    }

    /// Delivers `notice` through every notifier, each retried per `retry`.
    pub async fn deliver(&self, notice: &Notice, retry: Retry) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for notifier in &self.list {
            let mut delay = retry.first_delay;
            let mut attempts = 0;
            let result = loop {
                attempts += 1;
                match self.attempt(notifier, notice).await {
                    Ok(()) => break Ok(()),
                    Err(e) if attempts >= retry.attempts => break Err(e),
                    Err(e) => {
                        tracing::warn!(notifier = %notifier.name, attempt = attempts, error = %e, "notification failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            };
            if let Err(e) = &result {
                tracing::error!(notifier = %notifier.name, attempts, error = %e, subject = %notice.subject, "notification not delivered");
            }
            deliveries.push(Delivery {
                notifier: notifier.name.clone(),
                attempts,
                result,
            });
        }
        deliveries
    }
}

/// The server's background delivery: a bounded queue and a task working through it.
#[derive(Clone)]
pub struct Dispatcher {
    queue: mpsc::Sender<Notice>,
}

impl Dispatcher {
    /// Starts the task; `report` hears how each delivery went.
    pub fn start(
        notifiers: Arc<Notifiers>,
        report: impl Fn(&Notice, &Delivery) + Send + Sync + 'static,
    ) -> Dispatcher {
        let (queue, mut notices) = mpsc::channel::<Notice>(QUEUE);
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                for delivery in notifiers.deliver(&notice, Retry::BACKGROUND).await {
                    report(&notice, &delivery);
                }
            }
        });
        Dispatcher { queue }
    }

    /// Queues `notice`; never waits (a full queue drops it, with a warning).
    pub fn send(&self, notice: Notice) {
        if let Err(e) = self.queue.try_send(notice) {
            tracing::warn!("notification dropped: {e}");
        }
    }
}

/// For commands run by hand: tells the configured notifiers about `notice` (a few quick
/// retries), logging what fails. Never an error: a notification must not change how the
/// command ends.
pub async fn tell(
    config: &Config,
    catalog: Arc<PluginCatalog>,
    limits: RuntimeLimits,
    notice: Notice,
) {
    if config.notify_settings().notifiers.is_empty() {
        return;
    }
    match Notifiers::from_config(config, catalog, limits) {
        Ok(notifiers) => {
            for delivery in notifiers.deliver(&notice, Retry::FOREGROUND).await {
                if let Err(e) = delivery.result {
                    eprintln!(
                        "warning: notifier {} could not deliver: {e}",
                        delivery.notifier
                    );
                }
            }
        }
        Err(e) => eprintln!("warning: notifications not sent: {e}"),
    }
}
