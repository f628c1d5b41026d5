//! Key files as found in a data folder (anyone with write access may have put them there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pqnode_crypto::fuzzing::decode_key_file(data);
});
