#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clyra_evidence::fuzz_hooks::note(data));
