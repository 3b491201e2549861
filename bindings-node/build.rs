//! Sets the linker flags a Node addon needs (napi symbols resolved at load time by Node).
fn main() {
    napi_build::setup();
}
