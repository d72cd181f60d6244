//! Benchmark harness for peak-users (see `README.md`). Nothing here is a
//! product component: [`memory_store::MemoryStore`] exists so that the
//! benchmarks measure handler CPU without any store I/O.

pub mod memory_accounts;
pub mod memory_caller;
pub mod memory_store;
