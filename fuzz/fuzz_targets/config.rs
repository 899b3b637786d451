//! Config loading never panics: any text is either refused with a message or validated.
//! Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run config` (in fuzz/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::from_toml(text) {
        if let Err(error) = config.validate() {
            assert!(!error.to_string().is_empty());
        }
    }
});
