//! Benchmark baseline, not a function: the smallest `lambda_runtime` program
//! (echoes its event). `scripts/bench-functions.sh` builds it with the same
//! release profile as the functions and compares their size and init time
//! with it (docs/benchmarks.md).

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|e: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(e.payload)
    }))
    .await
}
