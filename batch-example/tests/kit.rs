//! The batch workflow on the testing kit: the whole batch under time skipping with the
//! enrichment API replaced by an activity mock and scripted failures, and the crash
//! simulation over the batch with the real activities and the mock HTTP API.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batch_example::activities::{
    chunk_path, staging_path, EnrichChunk, EnrichChunkInput, EnrichChunkOutput, EnrichedRecord, LoadCsvChunks,
    SaveChunk,
};
use batch_example::csv_chunks::{generate_sample, read_chunk};
use batch_example::mock_api::{region_of, MockApi, MockApiOptions};
use batch_example::summary::BatchSummary;
use batch_example::workflows::{BatchInput, BatchWorkflow, EnrichAndSaveWorkflow, LoadChunksWorkflow};
use workflow_core::testing::{CrashSimulation, TestEnv, TEST_START};
use workflow_core::{Activity, ActivityContext, ActivityError};

fn batch_input(dir: &Path, rows: u64, chunk_size: u64) -> BatchInput {
    let input = dir.join("users.csv");
    generate_sample(&input, rows).unwrap();
    BatchInput {
        input,
        chunk_size,
        concurrency: 2,
        batch_dir: dir.join("out"),
        retry_of: None,
        max_record_bytes: 1 << 20,
    }
}

/// What the real `enrich_chunk` does, without the API: stages every row of the chunk,
/// enriched from its country, in this attempt's staging file.
fn enrich_offline(ctx: &ActivityContext, input: &EnrichChunkInput) -> Result<EnrichChunkOutput, ActivityError> {
    let users = read_chunk(&input.chunk).map_err(|e| ActivityError::non_retryable("Csv", e.to_string()))?;
    let staged = staging_path(&input.batch_dir, input.chunk.index, ctx.attempt());
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(&staged).unwrap();
    for u in &users {
        let record = EnrichedRecord {
            row: u.row,
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            country: u.country.clone(),
            region: region_of(&u.country).to_string(),
            segment: Some("offline".into()),
            enriched: true,
            error: None,
        };
        writeln!(file, "{}", serde_json::to_string(&record).unwrap()).unwrap();
    }
    ctx.heartbeat(&users.len());
    let n = users.len() as u64;
    Ok(EnrichChunkOutput {
        index: input.chunk.index,
        staged,
        records: n,
        enriched: n,
        fallback: 0,
        attempt: ctx.attempt(),
    })
}

#[tokio::test]
async fn the_whole_batch_under_time_skipping_with_scripted_failures() {
    let dir = tempfile::tempdir().unwrap();
    let input = batch_input(dir.path(), 40, 10);
    std::fs::create_dir_all(&input.batch_dir).unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let env = TestEnv::builder()
        .workflow::<BatchWorkflow>()
        .workflow::<LoadChunksWorkflow>()
        .workflow::<EnrichAndSaveWorkflow>()
        .activity(LoadCsvChunks::default())
        .activity(SaveChunk::default())
        // The API is down for chunk 1's first two attempts, and chunk 3 is refused for good.
        .mock::<EnrichChunk>(move |ctx, input| {
            counted.fetch_add(1, Ordering::SeqCst);
            match (input.chunk.index, ctx.attempt()) {
                (1, 1 | 2) => Err(ActivityError::retryable("ApiDown", "connection refused")),
                (3, _) => Err(ActivityError::non_retryable("Forbidden", "the API refuses this chunk")),
                _ => enrich_offline(ctx, &input),
            }
        })
        .start()
        .unwrap();
    let summary: BatchSummary = env.execute::<BatchWorkflow>("batch-kit", input.clone()).await.unwrap();

    assert_eq!((summary.rows, summary.chunks, summary.chunks_done), (40, 4, 3), "{summary:?}");
    assert_eq!(summary.chunks_failed.len(), 1);
    assert_eq!(summary.chunks_failed[0].index, 3);
    assert!(summary.chunks_failed[0].error.contains("Forbidden"), "{:?}", summary.chunks_failed[0]);
    assert_eq!(summary.activity_retries, 2, "chunk 1 took three attempts");
    assert_eq!(summary.enriched, 30);
    // Chunk 1 was retried after 1 s and 2 s of backoff, skipped in no time.
    assert!(env.now().since(TEST_START) >= Duration::from_secs(3), "{:?}", env.now().since(TEST_START));
    assert_eq!(calls.load(Ordering::SeqCst), 4 + 2);
    let attempts: Vec<u32> = env
        .calls(EnrichChunk::NAME)
        .iter()
        .filter(|c| c.workflow_id.ends_with("chunk-00001"))
        .map(|c| c.attempt)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    for index in [0, 1, 2] {
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(chunk_path(&input.batch_dir, index)).unwrap()).unwrap();
        assert_eq!(records.len(), 10, "chunk {index}");
        assert!(records.iter().all(|r| r["segment"] == "offline"));
    }
    assert!(!chunk_path(&input.batch_dir, 3).exists());
}

#[tokio::test]
async fn every_crash_point_of_the_batch_holds() {
    let dir = tempfile::tempdir().unwrap();
    let input = batch_input(dir.path(), 12, 4);
    std::fs::create_dir_all(&input.batch_dir).unwrap();
    let api = MockApi::start(MockApiOptions::default()).await.unwrap();
    let report = CrashSimulation::<BatchWorkflow>::new(input.clone())
        .workflow::<LoadChunksWorkflow>()
        .workflow::<EnrichAndSaveWorkflow>()
        .activity(LoadCsvChunks::default())
        .activity(EnrichChunk::new(api.url()))
        .activity(SaveChunk::default())
        .seed(12)
        .random_faults(10)
        // A crash delays the batch (a lease must expire) and may cost an attempt: times and
        // retry counts differ, what was done must not.
        .same_result(|a, b| {
            let strip = |s: &BatchSummary| BatchSummary {
                started_at_ms: 0,
                finished_at_ms: 0,
                activity_retries: 0,
                ..s.clone()
            };
            strip(a) == strip(b)
        })
        .run()
        .await
        .unwrap();
    api.stop().await;
    assert!(report.passed(), "{report}");
    assert!(report.crash_points >= 10, "{report}");
    println!("{report}");
    for index in 0..3 {
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(chunk_path(&input.batch_dir, index)).unwrap()).unwrap();
        assert_eq!(records.len(), 4, "chunk {index}");
    }
}
