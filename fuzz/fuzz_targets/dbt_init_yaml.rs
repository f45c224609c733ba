#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clyra_warehouse::dbt::init::yaml::fuzz(data));
