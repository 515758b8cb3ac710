//! The one wasmtime engine of the process: configuration, the epoch ticker that bounds CPU
//! time, and the linkers that give a plugin exactly the hoard and WASI interfaces.

use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{notifier, transport};
use super::cache::CompileCache;
use super::state::JobState;

/// How often the epoch advances; a deadline is a number of these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every plugin job (the config can change each).
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    /// Linear memory a plugin may grow to (default 512 MiB).
    pub memory_bytes: u64,
    /// Wall time of one backup or restore call.
    pub job_deadline: Duration,
    /// Wall time of `describe()` and of one `notify()`.
    pub short_deadline: Duration,
    /// How long a client may stay silent on a stream, or a program may take to exit after its
    /// output ended (BackupPC's `ClientTimeout`, default 72000 s).
    pub client_timeout: Duration,
    /// How long reaching a client may take (ssh connect and handshake, TCP connect).
    pub connect_timeout: Duration,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            job_deadline: Duration::from_secs(24 * 3600),
            short_deadline: Duration::from_secs(30),
            client_timeout: Duration::from_secs(72_000),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// The engine, its compile cache and the two linkers; one per process, shared by every job.
pub struct PluginEngine {
    engine: Engine,
    cache: CompileCache,
    transport_linker: Linker<JobState>,
    notifier_linker: Linker<JobState>,
}

impl PluginEngine {
    /// Builds the engine and starts its epoch ticker (a thread that ends with the engine).
    pub fn new(cache: CompileCache) -> wasmtime::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;

        let mut transport_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut transport_linker)?;
        add_transport_interfaces(&mut transport_linker)?;

        let mut notifier_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut notifier_linker)?;
        add_notifier_interfaces(&mut notifier_linker)?;

        let this = Arc::new(Self {
            engine,
            cache,
            transport_linker,
            notifier_linker,
        });
        spawn_epoch_ticker(Arc::downgrade(&this));
        Ok(this)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-code cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// The linker for transport plugins.
    pub fn transport_linker(&self) -> &Linker<JobState> {
        &self.transport_linker
    }

    /// The linker for notifier plugins.
    pub fn notifier_linker(&self) -> &Linker<JobState> {
        &self.notifier_linker
    }
}

/// The hoard interfaces of the transport world (WASI is added separately, once).
fn add_transport_interfaces(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    use transport::hoard::plugin as hp;
    hp::types::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::manifest::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::job::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::process::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::net::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::client::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::server_tools::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::credentials::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::sink::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::reference::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::snapshot::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    Ok(())
}

/// The hoard interfaces of the notifier world.
fn add_notifier_interfaces(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    use notifier::hoard::plugin as np;
    use transport::hoard::plugin as hp;
    hp::types::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::manifest::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::job::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::net::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    hp::credentials::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    np::events::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    np::endpoint::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    np::http::add_to_linker::<_, HasSelf<JobState>>(linker, |s| s)?;
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: Weak<PluginEngine>) {
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(
            "cannot start the wasm epoch ticker, plugin CPU deadlines will not fire: {e}"
        );
    }
}
