//! ML-DSA-87 and ML-KEM-1024 on each backend: median µs per operation, and
//! the ratio of each to aws-lc-rs measured in the same run.
//!
//! `cargo bench -p pqnode-crypto`. Prints figures; never fails on time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pqnode_crypto::{Backend, Identity, KemKeyPair};

/// Batches per measurement; the median batch is reported.
const BATCHES: usize = 31;
/// Rough wall time per batch, to size the batch from a warm-up.
const BATCH_TARGET: Duration = Duration::from_millis(20);
const DOMAIN: &str = "pqnode/bench/v1";

/// Prepares keys for one backend and returns the operation to time.
type Setup = fn(Backend) -> Box<dyn FnMut()>;

fn main() {
    let operations: [(&str, Setup); 6] = [
        ("ML-DSA-87 keygen (seed)", dsa_keygen),
        ("ML-DSA-87 sign (hedged)", dsa_sign),
        ("ML-DSA-87 verify", dsa_verify),
        ("ML-KEM-1024 keygen", kem_keygen),
        ("ML-KEM-1024 encapsulate", kem_encapsulate),
        ("ML-KEM-1024 decapsulate", kem_decapsulate),
    ];
    let backends: Vec<Backend> = Backend::available().collect();

    print!("{:<26}", "operation (median µs/op)");
    for backend in &backends {
        print!("{:>14}", backend.name());
    }
    println!("{:>16}", "ratio to aws-lc");
    for (name, setup) in operations {
        let figures = median_micros(backends.iter().map(|&b| setup(b)).collect());
        print!("{name:<26}");
        for us in &figures {
            print!("{us:>14.1}");
        }
        let anchor = figures.first().copied().unwrap_or(f64::NAN);
        let ratios: Vec<String> = figures
            .iter()
            .map(|us| format!("{:.2}", us / anchor))
            .collect();
        println!("{:>16}", ratios.join(" / "));
    }
}

/// Median µs per call of each operation. Batches of the operations
/// alternate, so a load change on a shared machine hits all of them alike
/// and the ratios stay meaningful.
fn median_micros(mut ops: Vec<Box<dyn FnMut()>>) -> Vec<f64> {
    let batch_sizes: Vec<u32> = ops.iter_mut().map(batch_size).collect();
    let mut samples = vec![Vec::with_capacity(BATCHES); ops.len()];
    for _ in 0..BATCHES {
        for ((op, &batch), samples) in ops.iter_mut().zip(&batch_sizes).zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..batch {
                op();
            }
            samples.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(batch));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Warms the operation up and returns how many calls fill one batch.
fn batch_size(op: &mut Box<dyn FnMut()>) -> u32 {
    let warm_up = Instant::now();
    let mut runs = 0u32;
    while warm_up.elapsed() < BATCH_TARGET * 5 {
        op();
        runs += 1;
    }
    let per_op = warm_up.elapsed() / runs.max(1);
    (BATCH_TARGET.as_nanos() / per_op.as_nanos().max(1)).clamp(1, 100_000) as u32
}

fn seed(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn dsa_keygen(backend: Backend) -> Box<dyn FnMut()> {
    let mut n = 0u8;
    Box::new(move || {
        n = n.wrapping_add(1);
        black_box(Identity::from_seed_with(backend, &seed(n)).expect("keygen"));
    })
}

fn dsa_sign(backend: Backend) -> Box<dyn FnMut()> {
    let identity = Identity::from_seed_with(backend, &seed(1)).expect("keygen");
    let mut counter = 0u64;
    Box::new(move || {
        // A new message each time, as in real use.
        counter += 1;
        black_box(identity.sign(DOMAIN, &counter.to_le_bytes()).expect("sign"));
    })
}

fn dsa_verify(backend: Backend) -> Box<dyn FnMut()> {
    let identity = Identity::from_seed_with(Backend::AwsLc, &seed(2)).expect("keygen");
    let signature = identity.sign(DOMAIN, b"message").expect("sign");
    Box::new(move || {
        identity
            .public_key()
            .verify_with(backend, DOMAIN, b"message", black_box(signature.as_bytes()))
            .expect("verify");
    })
}

fn kem_keygen(backend: Backend) -> Box<dyn FnMut()> {
    Box::new(move || {
        black_box(KemKeyPair::generate(backend).expect("keygen"));
    })
}

fn kem_encapsulate(backend: Backend) -> Box<dyn FnMut()> {
    let keys = KemKeyPair::generate(Backend::AwsLc).expect("keygen");
    Box::new(move || {
        black_box(
            keys.public_key()
                .encapsulate_with(backend)
                .expect("encapsulate"),
        );
    })
}

fn kem_decapsulate(backend: Backend) -> Box<dyn FnMut()> {
    let generated = KemKeyPair::generate(Backend::AwsLc).expect("keygen");
    let dk = generated.to_expanded().expect("export");
    let keys = KemKeyPair::from_expanded(backend, &dk).expect("import");
    let (ciphertext, _) = generated.public_key().encapsulate().expect("encapsulate");
    Box::new(move || {
        black_box(
            keys.decapsulate(black_box(&ciphertext))
                .expect("decapsulate"),
        );
    })
}
