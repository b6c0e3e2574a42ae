//! What every worker binary does around its stage: logging, the runtime,
//! `/metrics` and `/health`, the shutdown signal, the exit code and the
//! optional JSON summary of the run.

use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::TelemetryConfig;
use crate::telemetry::{self, Health};

/// Runs `run(health, shutdown)` as the process's service named `name` and
/// turns its outcome into the exit code: 0 after a clean stop (its summary
/// logged and, with `summary_json`, written there), 1 on failure.
pub fn run_service<S, E, F, Fut>(
    name: &str,
    telemetry_config: &TelemetryConfig,
    summary_json: Option<PathBuf>,
    run: F,
) -> ExitCode
where
    S: serde::Serialize,
    E: Display,
    F: FnOnce(Health, CancellationToken) -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    telemetry::init_logging(&telemetry_config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = crate::shutdown::on_signals();
        let health = Health::default();
        let handle = telemetry::install_metrics();
        if !telemetry_config.listen.is_empty() {
            match telemetry::serve(&telemetry_config.listen, handle, health.clone(), shutdown.clone()).await {
                Ok(addr) => tracing::info!(%addr, "serving /metrics and /health"),
                Err(e) => {
                    tracing::error!(listen = %telemetry_config.listen, error = %e, "cannot bind metrics listener");
                    return ExitCode::FAILURE;
                }
            }
        }
        let result = run(health, shutdown.clone()).await;
        shutdown.cancel();
        match result {
            Ok(summary) => {
                let json = serde_json::to_string(&summary).unwrap_or_default();
                tracing::info!(summary = %json, "{name} stopped");
                if let Some(path) = summary_json
                    && let Err(e) = std::fs::write(&path, json)
                {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the run summary");
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "{name} failed");
                ExitCode::FAILURE
            }
        }
    })
}
