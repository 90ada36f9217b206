//! The guide's code samples (`book/src/snippets/*.rs`), compiled and run as tests, so that
//! no sample in the book can drift from the code. Each snippet is a complete program with a
//! `main`; the book shows parts of it between `ANCHOR` comments.

macro_rules! snippet {
    ($name:ident, $file:literal) => {
        mod $name {
            include!(concat!("../../book/src/snippets/", $file));

            #[test]
            fn runs() {
                main();
            }
        }
    };
}

snippet!(quickstart, "quickstart.rs");
snippet!(determinism, "determinism.rs");
snippet!(children, "children.rs");
snippet!(retries, "retries.rs");
snippet!(testing, "testing.rs");
snippet!(features, "features.rs");
snippet!(longrunning, "longrunning.rs");
snippet!(updates, "updates.rs");
snippet!(async_completion, "async_completion.rs");
snippet!(local, "local.rs");
