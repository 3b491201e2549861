//! Every exported `extern "C" fn` in ffi/src runs its body inside the panic boundary
//! (`ffi_call` / `ffi_call_or`), so no panic can unwind into C.

use std::path::Path;

#[test]
fn every_export_body_starts_with_the_panic_boundary() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut exports = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("extern \"C\" fn ") {
            let after = &rest[at + "extern \"C\" fn ".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            rest = after;
            if name.is_empty() {
                continue; // a function pointer type, not an export
            }
            // The parameter list, then the body's opening brace.
            let open = after.find('(').unwrap();
            let mut depth = 0;
            let mut close = open;
            for (i, c) in after[open..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let brace = close + after[close..].find('{').unwrap();
            let body = after[brace + 1..].trim_start();
            assert!(
                body.starts_with("ffi_call(")
                    || body.starts_with("ffi_call_or(")
                    || body.starts_with("crate::boundary::ffi_call"),
                "{}: `{name}` does not start with the panic boundary (ffi_call / ffi_call_or)",
                path.display()
            );
            exports += 1;
        }
    }
    assert!(exports >= 5, "found only {exports} exports");
}
