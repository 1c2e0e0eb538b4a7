//! The connection log's writer: listeners with `log = true` queue one record per connection
//! (lb-core's bounded [`ConnectionLog`]); a thread of its own writes them as log lines
//! (target `ha_lb::connection`, info level, in the process's log format), so a slow stderr or
//! journald never holds up the data path: when the queue is full a record is dropped and
//! counted (`ha_lb_connection_log_dropped_total`).

use lb_core::{ConnectionLog, ConnectionRecord};

/// Records queued at most before new ones are dropped.
pub const QUEUE: usize = 8192;

/// Starts the writer thread; returns the queue listeners send to.
pub fn start() -> ConnectionLog {
    let (log, mut rx) = ConnectionLog::new(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("ha-lb-connlog".into())
        .spawn(move || {
            while let Some(r) = rx.blocking_recv() {
                write(&r);
            }
        });
    if let Err(e) = spawned {
        // Without its reader every record counts as dropped: visible, and nothing blocks.
        tracing::error!(error = %e, "no connection log thread: records are dropped");
    }
    log
}

/// One record as one log line.
pub fn write(r: &ConnectionRecord) {
    let backend = r.backend.map(|b| b.to_string()).unwrap_or_default();
    let tried: Vec<String> = r.tried.iter().map(ToString::to_string).collect();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let connect_ms = r.connect_time.map_or(-1.0, ms);
    tracing::info!(
        target: "ha_lb::connection",
        listener = %r.listener,
        client = %r.client,
        pool = %r.pool,
        backend = %backend,
        tried = %tried.join(","),
        connect_ms,
        bytes_in = r.bytes_from_client,
        bytes_out = r.bytes_to_client,
        duration_ms = ms(r.duration),
        end = r.end.as_str(),
        "connection"
    );
}
