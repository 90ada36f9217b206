//! Wake-ups from other processes: `LISTEN` on a connection of its own.
//!
//! Every group commit sends `NOTIFY` on the schema's channel with its origin and the runs it
//! closed. The listener wakes this store's workers for any other origin's notification and
//! announces the closed runs. When the connection breaks (or `LISTEN` is not supported) it
//! wakes everyone once, so that nothing waits for a notification that was missed, and tries
//! again with a growing pause; meanwhile workers poll at their poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::AsyncMessage;
use workflow_core::RunId;

use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match listen_once(&shared).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(server = %shared.target.describe, error = %e, "LISTEN connection failed; workers poll until it is back")
            }
        }
        shared.notify.notify_waiters();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

async fn listen_once(shared: &Shared) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = shared.target.config.connect(shared.target.tls.clone()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {}", shared.channel)).await?;
    // Anything committed before LISTEN took effect is found by this wake-up.
    shared.notify.notify_waiters();
    while let Some(payload) = rx.recv().await {
        let mut parts = payload.split(' ');
        if parts.next() == Some(shared.origin.as_str()) {
            continue;
        }
        shared.notify.notify_waiters();
        for id in parts.filter(|p| !p.is_empty()) {
            let _ = shared.closed.send(RunId(id.to_string()));
        }
    }
    drop(client);
    match pump.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}
