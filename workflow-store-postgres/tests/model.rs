//! PostgresStore against the reference MemoryStore (`workflow_core::store::model`), on a real
//! server: random operation sequences must give the same results and observable state.

use std::sync::Arc;

use proptest::prelude::*;
use workflow_core::store::model;
use workflow_store_postgres::testing;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn postgres_store_behaves_like_memory_store(ops in model::ops()) {
        let Some(server) = testing::server() else { return Ok(()) };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = server.store("model").await;
            let schema = store.schema().to_string();
            let result = model::check(Arc::new(store), ops).await;
            let s = workflow_store_postgres::PostgresStore::builder(server.url()).schema(schema).listen(false);
            s.connect().await.unwrap().destroy().await.unwrap();
            result
        })?;
    }
}
