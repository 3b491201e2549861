//! README.md shows tests/c/example.c verbatim (tests/c/run.sh compiles and runs that file).

use std::path::Path;

/// README.md's C quick start (between `<!-- quickstart:c begin -->` and `<!-- quickstart:c end -->`)
/// is tests/c/example.c too.
#[test]
fn readme_c_quickstart_is_tests_c_example_c() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("tests/c/example.c")).unwrap();
    let start = readme
        .find("<!-- quickstart:c begin -->")
        .expect("begin marker in README.md");
    let end = readme
        .find("<!-- quickstart:c end -->")
        .expect("end marker in README.md");
    let block = &readme[start..end];
    let code_start = block.find("```c\n").expect("a ```c fence") + 5;
    let code_end = block.rfind("```").unwrap();
    assert_eq!(
        &block[code_start..code_end],
        example,
        "README.md's C quick start differs from tests/c/example.c: keep them identical"
    );
}
