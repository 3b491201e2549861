//! The Rust quick start (core/examples/quickstart.rs) runs as the README says and prints what it
//! promises; the README's Rust quick-start block is that file, verbatim.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fenced code between `<!-- quickstart:<lang> begin -->` and `<!-- quickstart:<lang> end -->`.
fn readme_block(lang: &str, fence: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let begin = format!("<!-- quickstart:{lang} begin -->");
    let end = format!("<!-- quickstart:{lang} end -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("{begin} in README.md"));
    let stop = readme
        .find(&end)
        .unwrap_or_else(|| panic!("{end} in README.md"));
    let block = &readme[start..stop];
    let open = format!("```{fence}\n");
    let code_start = block
        .find(&open)
        .unwrap_or_else(|| panic!("a {open:?} fence"))
        + open.len();
    let code_end = block.rfind("```").unwrap();
    block[code_start..code_end].to_string()
}

#[test]
fn readme_rust_quickstart_is_the_example_file() {
    let example = std::fs::read_to_string(repo_root().join("core/examples/quickstart.rs")).unwrap();
    assert_eq!(
        readme_block("rust", "rust"),
        example,
        "README.md's Rust quick start differs from core/examples/quickstart.rs: keep them identical"
    );
}

#[test]
fn quickstart_example_runs_the_graph_and_reports() {
    // The README's own command (cargo from this build; a no-op rebuild when the example is fresh).
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "vibetrees-core",
            "--example",
            "quickstart",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();

    assert_eq!(
        lines[0],
        format!("vibetrees-core {}", vibetrees_core::VERSION)
    );
    // Each task printed its dependencies' results; scan first, package last (after lint and test).
    let got = |task: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{task} ")) && l.contains(" got "))
            .unwrap_or_else(|| panic!("task {task} printed its inputs:\n{stdout}"))
    };
    assert!(lines[got("scan")].ends_with("got {}"));
    assert!(lines[got("lint")].ends_with(r#"got {"scan": "scan: ok"}"#));
    assert!(lines[got("test")].ends_with(r#"got {"scan": "scan: ok"}"#));
    assert!(lines[got("package")].ends_with(r#"got {"lint": "lint: ok", "test": "test: ok"}"#));
    assert!(got("scan") < got("lint") && got("scan") < got("test"));
    assert!(got("lint") < got("package") && got("test") < got("package"));

    assert!(
        lines.contains(
            &r#"results: {"lint": "lint: ok", "package": "package: ok", "scan": "scan: ok", "test": "test: ok"}"#
        ),
        "results line:\n{stdout}"
    );
    assert!(
        lines.contains(
            &"ending op-404 (expected) failed [NOT_FOUND]: not found: unknown operation id 'op-404'"
        ),
        "NOT_FOUND line naming op-404:\n{stdout}"
    );

    let metrics_line = lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics: "))
        .unwrap_or_else(|| panic!("a metrics line:\n{stdout}"));
    let metrics: serde_json::Value = serde_json::from_str(metrics_line).expect("metrics are JSON");
    let mut names: Vec<&str> = metrics["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|op| {
            assert_eq!(op["count"], 1, "each task ran once: {op}");
            op["name"].as_str().unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["lint", "package", "scan", "test"]);
    assert!(metrics["totalTime"].as_f64().unwrap() > 0.0);
}
