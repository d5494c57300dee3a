//! Starting and stopping the gateway: [`run`] wires config, host, chain,
//! sink and HTTP together and returns after a graceful shutdown.

use crate::config::Config;
use crate::gateway::Gateway;
use crate::host::{Host, Limits};
use crate::ingest::{AppState, IngestLimits, app};
use crate::pipeline::registry::Registry;
use crate::sinks::file::FileSink;
use crate::telemetry::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "plugins folder {0} does not exist or is not a folder (build the first-party plugins with `cargo xtask plugins`)"
    )]
    NoPluginsDir(String),
    #[error("cannot start the plugin host: {0}")]
    Host(String),
    #[error(
        "refusing to start with plugins that do not load (fix or remove them; `gateway check` shows details):\n{0}"
    )]
    Plugins(String),
    #[error("cannot open the file sink under {path}: {source}")]
    Sink {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot watch the plugins folder: {0}")]
    Watch(#[from] notify::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Build the plugin registry and load the folder once.
pub fn load_plugins(
    config: &Config,
    metrics: Arc<Metrics>,
    cache: bool,
) -> Result<Arc<Registry>, RunError> {
    let dir = &config.plugins.dir;
    if !dir.is_dir() {
        return Err(RunError::NoPluginsDir(dir.display().to_string()));
    }
    let cache_dir = cache.then(|| {
        config
            .plugins
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.file_sink.dir.join("cache"))
    });
    let host = Host::new(cache_dir, metrics).map_err(|e| RunError::Host(format!("{e:#}")))?;
    let registry = Registry::new(
        dir.clone(),
        host,
        Limits::from_config(&config.plugins),
        config.plugins.max_batch,
    );
    let report = registry.reload();
    if !report.failed.is_empty() {
        let lines: Vec<String> = report
            .failed
            .iter()
            .map(|(f, e)| format!("  {f}: {e}"))
            .collect();
        return Err(RunError::Plugins(lines.join("\n")));
    }
    Ok(registry)
}

/// Run the gateway until SIGINT/SIGTERM, then drain in-flight requests and
/// flush the sink.
pub async fn run(config: Config) -> Result<(), RunError> {
    config.validate()?;
    let metrics = Arc::new(Metrics::new());
    let cfg = config.clone();
    let m = metrics.clone();
    let registry = tokio::task::spawn_blocking(move || load_plugins(&cfg, m, true))
        .await
        .map_err(|e| RunError::Host(e.to_string()))??;
    let sink = FileSink::start(
        config.file_sink.dir.clone(),
        config.file_sink.rotate_size.as_u64(),
        config.file_sink.fsync,
    )
    .map_err(|source| RunError::Sink {
        path: config.file_sink.dir.display().to_string(),
        source,
    })?;
    if config.plugins.watch {
        registry.watch(
            config.plugins.reload_debounce,
            config.plugins.rescan_interval,
        )?;
    }
    let gateway = Arc::new(Gateway {
        registry,
        sink,
        metrics,
    });
    let state = Arc::new(AppState {
        gateway: gateway.clone(),
        limits: IngestLimits {
            max_body_bytes: config.server.max_body_size.as_u64() as usize,
            max_events: config.server.max_events_per_request,
        },
    });
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    tracing::info!(%addr, plugins = %config.plugins.dir.display(), data = %config.file_sink.dir.display(), "gateway listening");
    // A line on stdout that scripts and tests can wait for.
    println!("wraith gateway listening on http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let timeout = config.server.shutdown_timeout;
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stop_tx.send(true);
    });
    let mut stop_rx2 = stop_rx.clone();
    tokio::select! {
        r = server => r.map_err(RunError::Serve)?,
        _ = async {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(timeout).await;
        } => tracing::warn!(?timeout, "in-flight requests did not finish in time; stopping anyway"),
    }
    drop(stop_rx);
    // Every acknowledged write is already durable; this closes the files.
    match Arc::try_unwrap(gateway) {
        Ok(mut g) => g.sink.shutdown(),
        Err(_) => tracing::debug!("requests still hold the sink; it closes when they end"),
    }
    tracing::info!("gateway stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
