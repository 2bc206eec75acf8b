//! A browser that navigates to an address which fails gets a page a person
//! can read (the JSON error's sentence and code, and a link back to the file
//! list), with the status and meaningful headers kept; every other client,
//! and every machine endpoint, still gets the JSON error.

use crate::common::{q, TestServer};
use chunkcast::server::policy::access::{unix_now, LinkKey};

/// What Chromium sends when a person opens an address.
const NAVIGATION: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

fn navigate(server: &TestServer, path: &str) -> crate::common::Resp {
    server.get_with(path, &[("Accept", NAVIGATION)])
}

/// Whether a `Vary` header of `res` names `Accept`.
fn varies_on_accept(res: &crate::common::Resp) -> bool {
    res.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("vary") && v.split(',').any(|t| t.trim() == "Accept"))
}

/// Asserts an error page: the status, HTML with no script allowed, the
/// heading, and the link back to the list at `root`.
fn assert_page(res: &crate::common::Resp, status: u16, heading: &str, root: &str) -> String {
    let html = res.text();
    assert_eq!(res.status, status, "{html}");
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"), "{html}");
    assert!(res.header("content-security-policy").is_some_and(|c| c.contains("default-src 'none'")));
    assert!(html.contains(&format!("<h2>{heading}</h2>")), "{html}");
    assert!(html.contains(&format!(r#"<a href="{root}">Open the file list</a>"#)), "{html}");
    assert!(html.contains(&format!(r#"href="{root}style.css""#)), "{html}");
    html
}

#[test]
fn a_missing_page_or_file_opened_in_a_browser_is_a_page_that_leads_back() {
    let root = crate::common::fixture_root();
    let server = TestServer::start(root.path(), &[]);

    let html = assert_page(&navigate(&server, "/nowhere"), 404, "Nothing here", "./");
    assert!(html.contains("There is no file or page at <code>/nowhere</code>"), "{html}");
    assert!(html.contains("HTTP 404 · not_found"), "{html}");

    let html = assert_page(&navigate(&server, "/files/gone/away.bin"), 404, "Nothing here", "../../");
    assert!(html.contains("<code>/files/gone/away.bin</code>"), "{html}");

    // A folder opened as a file: the page says so and opens it in the list.
    for (path, link) in [
        ("/files/nested", r#"<a href="../?dir=nested">Open it in the file list</a>"#),
        ("/files/nested/", r#"<a href="../../?dir=nested">Open it in the file list</a>"#),
        ("/files/nested/deeper", r#"<a href="../../?dir=nested/deeper">Open it in the file list</a>"#),
    ] {
        let res = navigate(&server, path);
        let html = res.text();
        assert_eq!(res.status, 404, "{path}: {html}");
        assert!(html.contains("<h2>This is a folder</h2>") && html.contains(link), "{path}: {html}");
    }
    // A hidden folder is no folder to anyone.
    std::fs::create_dir(root.path().join(".hidden-dir")).unwrap();
    assert!(navigate(&server, "/files/.hidden-dir").text().contains("<h2>Nothing here</h2>"));

    // The client's text is shown, never run.
    let html = assert_page(&navigate(&server, "/%3Cscript%3Ealert(1)%3C%2Fscript%3E"), 404, "Nothing here", "./");
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");

    // The link leads to the list, and its style sheet is there.
    assert_eq!(navigate(&server, "/").status, 200);
    assert_eq!(server.get("/style.css").status, 200);
}

#[test]
fn scripts_tools_and_machine_endpoints_keep_the_json_error() {
    let root = crate::common::fixture_root();
    let server = TestServer::start(root.path(), &[]);
    // No `Accept: text/html`: fetch, EventSource, get, curl.
    server.get("/nowhere").assert_error(404, "not_found");
    let json = server.get("/files/gone.bin");
    json.assert_error(404, "not_found");
    // Both answers of a page path say they depend on `Accept`, for caches.
    assert!(varies_on_accept(&json) && varies_on_accept(&navigate(&server, "/files/gone.bin")), "{:?}", json.headers);
    server.get_with("/files/gone.bin", &[("Accept", "*/*")]).assert_error(404, "not_found");
    // The API answers JSON even to a browser's address bar.
    for path in ["/api/manifest?file=gone.bin", "/events?file=gone.bin", "/events/chunk/0/1?file=gone.bin"] {
        navigate(&server, path).assert_error(404, "not_found");
    }
    let api = navigate(&server, "/api/files?dir=gone");
    api.assert_error(404, "not_found");
    assert!(!varies_on_accept(&api), "the API's answer never depends on Accept");
    // A file that is there is the file, whatever the browser accepts.
    let res = navigate(&server, "/files/story.txt");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, std::fs::read(root.path().join("story.txt")).unwrap());
}

#[test]
fn refused_links_and_sign_in_say_why_and_keep_their_headers() {
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("link-key");
    let server = TestServer::start(root.path(), &["--auth", "ann:pw", "--link-key", key_file.to_str().unwrap()]);
    let key = LinkKey::load_or_create(&key_file).unwrap();
    let past = unix_now() - 5;

    let expired = format!("/files/{}?exp={past}&sig={}", q("story.txt"), key.sign("story.txt", past));
    let html = assert_page(&navigate(&server, &expired), 403, "This link has expired", "../");
    assert!(html.contains("This link has expired; ask for a new one."), "{html}");
    assert!(html.contains("HTTP 403 · link_expired"), "{html}");

    let exp = unix_now() + 600;
    let other = format!("/files/{}?exp={exp}&sig={}", q("story.txt"), key.sign("one-chunk.bin", exp));
    assert_page(&navigate(&server, &other), 403, "This link does not work here", "../");

    // Without credentials: the browser's sign-in prompt still comes.
    let res = navigate(&server, "/files/story.txt");
    assert_page(&res, 401, "Sign-in needed", "../");
    assert!(res.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")), "{:?}", res.headers);
}
