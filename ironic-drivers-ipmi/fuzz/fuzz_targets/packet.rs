//! Every parser that sees bytes from a BMC: RMCP+ frames, session setup messages,
//! IPMI responses, AES-CBC payloads and SDRs. Run with
//! `cd ironic-drivers-ipmi/fuzz && cargo +nightly fuzz run packet`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ironic_drivers_ipmi::fuzzing::parse_all(data);
});
