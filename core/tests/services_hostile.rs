//! A hostile compose file: service names and images that are not compose-valid never reach a
//! command line or `.env`; a newline can never make a `.env` line. Real files.

use vibetrees_core::services::compose::parse_compose_yaml;
use vibetrees_core::services::envfile::write_env_if_absent;

#[test]
fn service_names_that_are_not_compose_valid_are_refused_by_name() {
    for (yaml, shown) in [
        ("services:\n  \"-d\":\n    image: busybox\n", "\"-d\""),
        (
            "services:\n  \"db\\nEVIL_PORT=1\":\n    image: busybox\n",
            "\"db\\nEVIL_PORT=1\"",
        ),
        ("services:\n  \"a b\":\n    image: busybox\n", "\"a b\""),
        ("services:\n  \"--rm\":\n    build: .\n", "\"--rm\""),
    ] {
        let e = parse_compose_yaml(yaml).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT", "{yaml}: {e}");
        assert!(e.to_string().contains(shown), "{e}");
        assert!(e.to_string().contains("[a-zA-Z0-9][a-zA-Z0-9_.-]*"), "{e}");
    }
    let ok =
        parse_compose_yaml("services:\n  api-gateway.v2_x:\n    image: ghcr.io/o/app:1\n").unwrap();
    assert_eq!(ok.service_names(), ["api-gateway.v2_x"]);
}

#[test]
fn images_that_could_be_read_as_options_are_refused() {
    for image in ["--privileged", "busybox\n--rm", "a b", "$(id)"] {
        let yaml = format!("services:\n  db:\n    image: {image:?}\n");
        let e = parse_compose_yaml(&yaml).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT", "{image:?}: {e}");
        assert!(e.to_string().contains("image"), "{e}");
    }
}

#[test]
fn a_newline_never_reaches_the_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = write_env_if_absent(
        dir.path(),
        "wt",
        &[
            ("DB_PORT\nEVIL".to_string(), 5432),
            ("API_PORT".into(), 3000),
        ],
    )
    .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert!(
        !dir.path().join(".env").exists(),
        "nothing written for a bad name"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
