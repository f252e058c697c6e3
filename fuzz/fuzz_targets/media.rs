#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| telemarketer_fuzz::media(data));
