use super::*;

const CHROME_87_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36";
const FIREFOX_121_WINDOWS_10: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
const SAFARI_IPHONE_IOS_17_1: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

fn parse(user_agent: &str) -> Device {
    Device::from_user_agent(Some(user_agent))
}

fn device(browser: &str, version: &str, platform: &str, os: &str, is_dev: bool) -> Device {
    Device {
        browser: browser.into(),
        version: version.into(),
        platform: platform.into(),
        os: os.into(),
        is_dev,
    }
}

/// Every field is bounded and printable, whatever came in.
fn assert_clean(device: &Device) {
    for field in [
        &device.browser,
        &device.version,
        &device.platform,
        &device.os,
    ] {
        assert!(field.len() <= 64, "{} bytes: {field:?}", field.len());
        assert!(!field.chars().any(char::is_control), "{field:?}");
    }
}

#[test]
fn chrome_on_linux_is_the_first_example_device_of_the_spec() {
    assert_eq!(
        parse(CHROME_87_LINUX),
        device("Chrome", "87.0.4280.88", "pc", "Linux", false)
    );
}

#[test]
fn postman_is_the_second_example_device_of_the_spec() {
    assert_eq!(
        parse("PostmanRuntime/7.26.8"),
        device("PostmanRuntime", "7.26.8", UNKNOWN, UNKNOWN, true)
    );
}

#[test]
fn sharex_falls_back_to_its_product_token() {
    assert_eq!(
        parse("ShareX/15.0.0"),
        device("ShareX", "15.0.0", UNKNOWN, UNKNOWN, false)
    );
}

#[test]
fn curl_is_named_curl_not_http_library() {
    // woothee says name "HTTP Library", version "curl", category misc: the name and version
    // come from the product token, the platform stays woothee's category.
    assert_eq!(
        parse("curl/8.4.0"),
        device("curl", "8.4.0", "misc", UNKNOWN, false)
    );
}

#[test]
fn firefox_on_windows_10() {
    assert_eq!(
        parse(FIREFOX_121_WINDOWS_10),
        device("Firefox", "121.0", "pc", "Windows 10", false)
    );
}

#[test]
fn safari_on_an_iphone() {
    assert_eq!(
        parse(SAFARI_IPHONE_IOS_17_1),
        device("Safari", "17.1", "smartphone", "iPhone", false)
    );
}

#[test]
fn absent_empty_or_blank_user_agents_are_unknown() {
    let unknown = device(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, false);
    assert_eq!(Device::unknown(), unknown);
    assert_eq!(Device::from_user_agent(None), unknown);
    assert_eq!(parse(""), unknown);
    assert_eq!(parse(" "), unknown);
    assert_eq!(parse(" \t \t "), unknown);
}

#[test]
fn postman_is_the_only_dev_client() {
    assert!(parse("PostmanRuntime/7.26.8").is_dev);
    assert!(!parse("PostmanRuntimeX/7.26.8").is_dev);
    assert!(!parse("postmanruntime/7.26.8").is_dev);
    assert!(!parse(CHROME_87_LINUX).is_dev);
}

#[test]
fn a_product_without_a_version_has_an_unknown_version() {
    assert_eq!(
        parse("ShareX"),
        device("ShareX", UNKNOWN, UNKNOWN, UNKNOWN, false)
    );
    assert_eq!(
        parse("ShareX/"),
        device("ShareX", UNKNOWN, UNKNOWN, UNKNOWN, false)
    );
}

#[test]
fn a_ten_kilobyte_user_agent_gives_bounded_fields() {
    // One token of 10 KB: the fallback takes it whole, so only the bounds cut it.
    let one_token = format!("{}/{}", "X".repeat(5_000), "9".repeat(5_000));
    let parsed = parse(&one_token);
    assert_clean(&parsed);
    assert_eq!(parsed.browser, "X".repeat(64));

    // A real browser's User-Agent followed by 10 KB of comments.
    let padded = format!("{CHROME_87_LINUX} {}", "(padding; x) ".repeat(800));
    assert!(padded.len() > 10_000);
    let parsed = parse(&padded);
    assert_clean(&parsed);
    assert_eq!(parsed.browser, "Chrome");

    // Multi-byte characters: every cut must land on a character boundary.
    let wide = "€".repeat(4_000);
    let parsed = parse(&wide);
    assert_clean(&parsed);
    assert!(parsed.browser.chars().all(|c| c == '€'), "{parsed:?}");
    assert!(!parsed.browser.is_empty());
}

#[test]
fn control_characters_are_dropped() {
    let parsed = parse("Share\u{7}X/15.\u{0}0.0\u{1b}[31m");
    assert_clean(&parsed);
    assert_eq!(parsed.browser, "ShareX");
    assert_eq!(parsed.version, "15.0.0[31m");

    let parsed = parse(&format!("Agent/1.0\u{0}{}", "\u{1}x".repeat(5_000)));
    assert_clean(&parsed);
    assert_eq!(parsed.browser, "Agent");

    let parsed = parse("\u{85}Mozilla/5.0\u{9f} (X11; Linux x86_64)\r\n\u{7f}");
    assert_clean(&parsed);
}

#[test]
fn a_product_made_only_of_control_characters_is_unknown_not_empty() {
    // The uploader's rule: each string defaults to "unknown". Cleaning must not leave "".
    let parsed = parse("\u{1}\u{2}/\u{3}");
    assert_clean(&parsed);
    assert_eq!(parsed, device(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, false));
}

#[test]
fn json_uses_the_uploader_field_names_in_its_order() {
    let json = serde_json::to_string(&parse(CHROME_87_LINUX)).expect("serialises");
    assert_eq!(
        json,
        r#"{"browser":"Chrome","version":"87.0.4280.88","platform":"pc","os":"Linux","isDev":false}"#
    );
    assert!(!json.contains("is_dev"));

    let postman = parse("PostmanRuntime/7.26.8");
    let value = serde_json::to_value(&postman).expect("serialises");
    assert_eq!(value["isDev"], serde_json::json!(true));
    let back: Device = serde_json::from_value(value).expect("reads back");
    assert_eq!(back, postman);
}

#[test]
fn an_unknown_browser_like_agent_is_named_by_its_own_product_token() {
    let device = Device::from_user_agent(Some(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SomeApp/1.0",
    ));
    assert_eq!(device.browser, "SomeApp");
    assert_eq!(device.version, "1.0");
    // The two spec devices are unaffected.
    assert_eq!(
        Device::from_user_agent(Some("PostmanRuntime/7.26.8")).browser,
        "PostmanRuntime"
    );
}
