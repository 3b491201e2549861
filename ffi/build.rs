//! Names the shared library by its ABI version, so programs linked against it load a compatible
//! copy and several versions can be installed side by side.
//!
//! Linux: SONAME `libvibetrees.so.<abi>`; macOS: install name `@rpath/libvibetrees.<abi>.dylib`.
//! `<abi>` is `0.<minor>` while the major version is 0 (each 0.x release may break the ABI, as
//! Cargo's semver rules say), then `<major>`. `ffi/install.sh` installs the file under that name
//! with the usual symlinks. This script touches only the link of the cdylib, never the sources.
use std::env;

fn main() {
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets CARGO_PKG_VERSION_MINOR");
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvibetrees.so.{abi}");
        }
        Ok("macos") => {
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libvibetrees.{abi}.dylib"
            );
        }
        _ => {}
    }
}
