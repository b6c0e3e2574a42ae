//! A deliberately tiny HTTP/1.1 listener for `/metrics` and `/health`
//! (no web framework in the dependency graph for two GET routes).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Liveness of the main loop: it calls [`Health::beat`] on every iteration.
#[derive(Clone, Debug, Default)]
pub struct Health {
    last_beat_ms: Arc<AtomicI64>,
}

impl Health {
    pub fn beat(&self) {
        self.last_beat_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Milliseconds since the last beat, `None` before the first.
    pub fn age_ms(&self) -> Option<i64> {
        let last = self.last_beat_ms.load(Ordering::Relaxed);
        (last > 0).then(|| chrono::Utc::now().timestamp_millis() - last)
    }
}

/// Serves until `shutdown`. Returns the bound address (useful with port 0).
pub async fn serve(
    listen: &str,
    handle: PrometheusHandle,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let upkeep = handle.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => upkeep.run_upkeep(),
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((mut stream, _)) = accepted else { continue };
            let handle = handle.clone();
            let health = health.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4", handle.render()),
                    "/health" => match health.age_ms() {
                        Some(age) if age < 60_000 => {
                            ("200 OK", "application/json", format!("{{\"status\":\"ok\",\"loop_age_ms\":{age}}}"))
                        }
                        Some(age) => (
                            "503 Service Unavailable",
                            "application/json",
                            format!("{{\"status\":\"stalled\",\"loop_age_ms\":{age}}}"),
                        ),
                        None => {
                            ("503 Service Unavailable", "application/json", "{\"status\":\"starting\"}".to_string())
                        }
                    },
                    _ => ("404 Not Found", "text/plain", "try /metrics or /health\n".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(addr)
}
