use super::*;

#[test]
fn redirects_keep_host_and_path_but_drop_the_port() {
    assert_eq!(
        https_location("share.example.com", "/api/x?y=1"),
        "https://share.example.com/api/x?y=1"
    );
    assert_eq!(
        https_location("share.example.com:80", "/"),
        "https://share.example.com/"
    );
    assert_eq!(https_location("[::1]:8080", "/a"), "https://[::1]/a");
    assert_eq!(https_location("[::1]", "/a"), "https://[::1]/a");
    assert_eq!(https_location("127.0.0.1:80", "/a"), "https://127.0.0.1/a");
}

#[test]
fn a_redirect_is_a_308_with_location_or_a_400_without_host() {
    let request = Request::builder()
        .uri("/api/account?x=1")
        .header(http::header::HOST, "share.example.com:80")
        .body(())
        .unwrap();
    let response = redirect_to_https(&request);
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()[http::header::LOCATION],
        "https://share.example.com/api/account?x=1"
    );
    let request = Request::builder().uri("/x").body(()).unwrap();
    assert_eq!(
        redirect_to_https(&request).status(),
        StatusCode::BAD_REQUEST
    );
}
