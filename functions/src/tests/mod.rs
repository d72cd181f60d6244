//! The package's tests live in the library, not in `functions/tests/`: an
//! integration test there makes `cargo test` link every one of the ~40
//! function binaries in debug (60 MB each, 2.4 GB of `target/`), which is
//! what filled the CI machine's disk. Nothing here needs the binaries.

mod s3_files;
mod secrets;
mod template;
