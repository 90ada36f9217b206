use super::*;

fn _object_safe(_: &dyn Store) {}

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let base = dir.path().to_path_buf();
    workflow_core::store::conformance::run_all(|| {
        let path = base.join(format!("db{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        async move { Arc::new(SledStore::open(path).unwrap()) as Arc<dyn Store> }
    })
    .await;
}
