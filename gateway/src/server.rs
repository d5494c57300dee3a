//! Starting and stopping the gateway: [`run`] wires config, host, chain,
//! sink and HTTP together and returns after a graceful shutdown.

use crate::config::Config;
use crate::gateway::Gateway;
use crate::host::{Host, Limits};
use crate::ingest::{AppState, Auth, IngestLimits, RateLimits, app};
use crate::ops::{ConfigSource, PidFile, Reloader};
use crate::pipeline::registry::Registry;
use crate::sinks::file::{FileSink, FileSinkOptions};
use crate::sinks::nats::{NatsError, NatsSink};
use crate::sinks::{Sinks, Target};
use crate::telemetry::Metrics;
use arc_swap::ArcSwap;
use std::collections::HashMap;
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
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(
        "plugins route to destinations no sink knows (`gateway check --config` shows them):\n{0}"
    )]
    Destinations(String),
    #[error("cannot watch the plugins folder: {0}")]
    Watch(#[from] notify::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Auth(#[from] crate::ingest::auth::AuthError),
    #[error(transparent)]
    PidFile(#[from] crate::ops::PidError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(
        "refusing to listen on {addr} without API tokens: anyone who can reach it could write events. \
         Configure tokens (auth.tokens, WRAITH_API_TOKENS or --tokens-file), listen on loopback, \
         or pass --allow-anonymous (auth.allow_anonymous) if something in front of the gateway checks who sends"
    )]
    Anonymous { addr: SocketAddr },
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
    let cache_dir = cache.then(|| config.cache_dir());
    let host = Host::new(cache_dir, metrics).map_err(|e| RunError::Host(format!("{e:#}")))?;
    let registry = Registry::new(
        dir.clone(),
        host,
        Limits::from_config(&config.plugins),
        config.plugins.max_batch,
    );
    if let Ok(m) = crate::pipeline::manifest::Manifest::load(dir) {
        let routed = m.routed_destinations();
        let unknown = config.unknown_destinations(&routed);
        if !unknown.is_empty() {
            return Err(RunError::Destinations(
                unknown
                    .iter()
                    .map(|(p, d)| {
                        format!("  {p} routes to `{d}`: add [destinations.{d}] to the config")
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
    }
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
/// flush the sink. SIGHUP rereads the tokens file and rescans the plugins.
pub async fn run(config: Config) -> Result<(), RunError> {
    run_with(config, None).await
}

/// [`run`], with SIGHUP also reloading the config from `source`
/// ([`crate::ops`] says what a reload changes).
pub async fn run_with(config: Config, source: Option<ConfigSource>) -> Result<(), RunError> {
    config.validate()?;
    // Refuse an open listener before loading anything.
    let tokens_file =
        (!config.auth.tokens_file.as_os_str().is_empty()).then(|| config.auth.tokens_file.clone());
    let auth = Arc::new(Auth::new(&config.auth.tokens, tokens_file)?);
    if !auth.enabled() && !config.server.listen.ip().is_loopback() && !config.auth.allow_anonymous {
        return Err(RunError::Anonymous {
            addr: config.server.listen,
        });
    }
    // One gateway per data folder: its files are not shared.
    let _pid = PidFile::create(&config.sinks.file.dir)?;
    let certs = match config.server.tls() {
        true => Some(crate::tls::Certs::new(
            &config.server.tls_cert,
            &config.server.tls_key,
        )?),
        false => None,
    };
    let acceptor = certs.as_ref().map(|c| c.acceptor()).transpose()?;
    let metrics = Arc::new(Metrics::new());
    let cfg = config.clone();
    let m = metrics.clone();
    let registry = tokio::task::spawn_blocking(move || load_plugins(&cfg, m, true))
        .await
        .map_err(|e| RunError::Host(e.to_string()))??;
    let sinks = start_sinks(&config).await?;
    if config.plugins.watch {
        registry.watch(
            config.plugins.reload_debounce,
            config.plugins.rescan_interval,
        )?;
    }
    let gateway = Arc::new(
        Gateway::new(
            registry,
            sinks,
            metrics,
            config.server.max_batches_in_flight,
            config.server.busy_timeout,
        )
        .with_destinations(config.destinations.keys().cloned())
        .with_chain_workers(config.plugins.workers()),
    );
    gateway.activity.spawn_sampler(gateway.metrics.clone());
    auth.watch();
    let rate = RateLimits::new(config.limits.requests_per_second, config.limits.burst);
    if let Some(r) = &rate {
        let r = Arc::downgrade(r);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(r) = r.upgrade() else { return };
                r.forget_idle();
            }
        });
    }
    let state = Arc::new(AppState::new(
        gateway.clone(),
        IngestLimits::from_config(&config),
        auth.clone(),
        rate,
    ));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let connection_limits = Arc::new(ArcSwap::from_pointee(config.limits.clone()));
    let reloader = Arc::new(Reloader {
        state: state.clone(),
        registry: gateway.registry.clone(),
        connection_limits: connection_limits.clone(),
        source,
        started: config.clone(),
        running: std::sync::Mutex::new(config.clone()),
        data_dir: config.sinks.file.dir.clone(),
        tls: certs,
    });
    reload_on_sighup(reloader);
    tracing::info!(%addr, plugins = %config.plugins.dir.display(), data = %config.sinks.file.dir.display(), nats = %config.sinks.nats.url, tokens = auth.len(), auth = auth.enabled(), "gateway listening");
    // A line on stdout that scripts and tests can wait for.
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("wraith gateway listening on {scheme}://{addr}");
    let timeout = config.server.shutdown_timeout;
    serve(
        listener,
        app(state),
        connection_limits,
        acceptor,
        async {
            shutdown_signal().await;
            tracing::info!("shutting down: draining in-flight requests");
        },
        timeout,
    )
    .await;
    // Every acknowledged write is already durable; this closes the files and
    // flushes the NATS connection.
    gateway.sinks.shutdown().await;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Reload on every SIGHUP, one reload at a time.
fn reload_on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; `gateway reload` will not work");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config and the plugins");
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload()).await;
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Accept connections until `shutdown` resolves, then wait up to `timeout`
/// for the requests in flight. Each connection is HTTP/1.1 through hyper
/// with the head limited to `limits.max_header_size` (431 past it) and
/// `limits.header_read_timeout` to send it, so slow clients cannot hold
/// connections; the body's own deadline is applied where it is read. The
/// limits are read for each new connection, so a reload applies to the
/// next ones.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Arc<ArcSwap<crate::config::LimitsConfig>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
    timeout: std::time::Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let l = limits.load();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(l.header_read_timeout)
            .max_buf_size((l.max_header_size.as_u64() as usize).max(8192));
        let watcher = graceful.watcher();
        match &tls {
            None => {
                let conn = http.serve_connection(TokioIo::new(stream), svc);
                tokio::spawn(async move {
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake has the header deadline too: a client that
                // opens a connection and says nothing cannot hold it.
                let acceptor = acceptor.clone();
                let deadline = l.header_read_timeout;
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(deadline, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?timeout,
            "in-flight requests did not finish in time; stopping anyway"
        );
    }
}

/// The sinks the config asks for: the file sink always (it keeps the dead
/// letters, and the events too while NATS is off), NATS when a URL is set.
pub async fn start_sinks(config: &Config) -> Result<Sinks, RunError> {
    let f = &config.sinks.file;
    let folders: HashMap<String, String> = config
        .destinations
        .keys()
        .map(|d| (d.clone(), config.folder_of(d)))
        .filter(|(d, f)| d != f)
        .collect();
    let file = FileSink::with_options(
        f.dir.clone(),
        FileSinkOptions {
            rotate_size: f.rotate_size.as_u64(),
            fsync: f.fsync,
            folders,
        },
    )
    .map_err(|source| RunError::Sink {
        path: f.dir.display().to_string(),
        source,
    })?;
    let nats_on = config.sinks.nats.enabled();
    let mut targets = vec![Target {
        sink: Arc::new(file),
        events: !nats_on,
        dead_letters: true,
    }];
    if nats_on {
        let subjects = config
            .destinations
            .keys()
            .map(|d| (d.clone(), config.subject_of(d)))
            .collect();
        let nats = NatsSink::start(&config.sinks.nats, subjects).await?;
        targets.push(Target {
            sink: nats,
            events: true,
            dead_letters: config.sinks.nats.dead_letters,
        });
    }
    Ok(Sinks::new(targets))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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
