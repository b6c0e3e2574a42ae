//! Logging, Prometheus metrics and the `/metrics` + `/health` listener.

pub mod names;
mod server;

pub use server::{Health, serve};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Starts `tracing` output (text or JSON) honouring `RUST_LOG` (default `info`).
/// Colours only on a terminal: log files and collectors get plain text.
pub fn init_logging(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
            let recorder =
                PrometheusBuilder::new().set_buckets(&buckets).expect("buckets are non-empty").build_recorder();
            let handle = recorder.handle();
            // A second install (tests) keeps the first recorder; the handle still renders.
            let _ = metrics::set_global_recorder(recorder);
            names::describe();
            handle
        })
        .clone()
}
