#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clyra_warehouse::fuzz_hooks::dbt_artifacts(data));
