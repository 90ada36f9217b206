//! SledStore against the reference MemoryStore (`workflow_core::store::model`): random
//! operation sequences must give the same results and leave the same observable state.

use std::sync::Arc;

use proptest::prelude::*;
use workflow_core::store::model;
use workflow_store_sled::SledStore;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sled_store_behaves_like_memory_store(ops in model::ops()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path().join("db")).unwrap());
        rt.block_on(model::check(store, ops))?;
    }
}
