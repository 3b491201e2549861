//! include/vibetrees.h must be exactly what cbindgen generates from ffi/src with ffi/cbindgen.toml.
//! On a difference this test fails; `VT_UPDATE_HEADER=1 cargo test -p vibetrees-ffi --test header`
//! rewrites the header (then review and commit it).

use std::path::Path;

#[test]
fn checked_in_header_matches_cbindgen_output() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header_path = crate_dir.join("../include/vibetrees.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml must parse");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen must generate the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("generated header is UTF-8");

    // Also through a file, as a human regenerating it would (checks the writer path too).
    let tmp = tempfile::tempdir().unwrap();
    let tmp_header = tmp.path().join("vibetrees.h");
    bindings.write_to_file(&tmp_header);
    assert_eq!(std::fs::read_to_string(&tmp_header).unwrap(), generated);

    if std::env::var_os("VT_UPDATE_HEADER").is_some() {
        std::fs::write(&header_path, &generated).unwrap();
        eprintln!("rewrote {}", header_path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&header_path).unwrap_or_default();
    if checked_in != generated {
        let first_diff = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "include/vibetrees.h is out of date (first difference at line {}: checked in {:?}, generated {:?}).\n\
             Regenerate it: VT_UPDATE_HEADER=1 cargo test -p vibetrees-ffi --test header",
            first_diff + 1,
            checked_in.lines().nth(first_diff),
            generated.lines().nth(first_diff),
        );
    }
}

#[test]
fn every_function_in_the_header_is_documented() {
    let header = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/vibetrees.h"),
    )
    .unwrap();
    let lines: Vec<&str> = header.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        // A declaration starts at column 0 and names `vt_something(`.
        let names_a_function = line.match_indices("vt_").any(|(at, _)| {
            let before = line[..at].chars().last();
            let ident: String = line[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            matches!(before, Some(' ') | Some('*')) && line[at + ident.len()..].starts_with('(')
        });
        let is_decl = !line.starts_with([' ', '#', '/', '*', '}']) && names_a_function;
        if is_decl {
            checked += 1;
            let prev = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap();
            assert!(
                prev.trim_start().starts_with("*/") || prev.trim_start().starts_with('*'),
                "no doc comment above: {line}"
            );
        }
    }
    assert!(checked >= 5, "found only {checked} function declarations");
}
