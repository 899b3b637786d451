//! Device parsing never panics and keeps every field short and printable.
//! Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run user_agent` (in fuzz/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::sessions::Device;

fuzz_target!(|agent: &str| {
    let device = Device::from_user_agent(Some(agent));
    for field in [&device.browser, &device.version, &device.platform, &device.os] {
        assert!(!field.is_empty() && field.len() <= 64, "{device:?}");
        assert!(!field.chars().any(char::is_control), "{device:?}");
    }
});
