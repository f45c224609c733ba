#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clyra_policy::fuzz_hooks::load(data));
