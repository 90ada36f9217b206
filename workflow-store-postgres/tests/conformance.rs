//! The store conformance suite, against a real PostgreSQL server.

use std::sync::{Arc, Mutex};

use workflow_core::store::Store;
use workflow_store_postgres::{testing, PostgresStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(server) = testing::server() else { return };
    let made: Arc<Mutex<Vec<String>>> = Arc::default();
    let m = made.clone();
    workflow_core::store::conformance::run_all(move || {
        let m = m.clone();
        async move {
            let store = server.store("conformance").await;
            m.lock().unwrap().push(store.schema().to_string());
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
    let schemas: Vec<String> = made.lock().unwrap().drain(..).collect();
    for schema in schemas {
        let s = PostgresStore::builder(server.url()).schema(schema).listen(false).connect().await.unwrap();
        s.destroy().await.unwrap();
    }
}
