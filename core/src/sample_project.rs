//! A sample Node project made on disk: a git repository of generated source files, a package.json,
//! and a real node_modules from `npm install` (or, when npm or the registry is not there, a
//! generated node_modules and a lockfile naming it).
//!
//! `vibetrees demo` and the worktree benchmark build their projects with it, so both measure the
//! same kind of tree.

use crate::{Error, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// What to build.
#[derive(Debug, Clone)]
pub struct SampleProject {
    /// The package name in package.json.
    pub name: String,
    /// Number of tracked source files (spread over nested folders, of varied sizes).
    pub source_files: usize,
    /// Dependencies installed by npm: (name, exact version).
    pub dependencies: Vec<(String, String)>,
    /// Dev dependencies written into the committed package.json but never installed (MCP
    /// discovery reads them; `npm ci` would fail on them, so they are left out when npm installs).
    pub uninstalled_dev_dependencies: Vec<(String, String)>,
    /// Do not try npm: generate node_modules.
    pub offline: bool,
    /// Packages of the generated node_modules (when npm is not used).
    pub generated_packages: usize,
    /// Files per generated package.
    pub generated_files_per_package: usize,
    /// Show npm's output (the demo does; the benchmark keeps it quiet).
    pub show_npm_output: bool,
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

impl SampleProject {
    /// The demo's project: 400 source files and six small real packages (~2k files).
    pub fn demo() -> Self {
        SampleProject {
            name: "sample-app".into(),
            source_files: 400,
            dependencies: pairs(&[
                ("lodash", "4.17.21"),
                ("commander", "12.1.0"),
                ("semver", "7.6.3"),
                ("debug", "4.3.7"),
                ("uuid", "10.0.0"),
                ("yargs", "17.7.2"),
            ]),
            uninstalled_dev_dependencies: pairs(&[(
                "@modelcontextprotocol/server-filesystem",
                "*",
            )]),
            offline: false,
            generated_packages: 120,
            generated_files_per_package: 12,
            show_npm_output: true,
        }
    }

    /// A typical web app's tree: a server framework, a test runner, a linter and a bundler
    /// (~9.8k files in ~480 packages), the shape of the tree whose `npm ci` issue 4 describes.
    pub fn web_app() -> Self {
        SampleProject {
            name: "bench-app".into(),
            source_files: 4000,
            dependencies: pairs(&[
                ("express", "4.21.1"),
                ("jest", "29.7.0"),
                ("eslint", "8.57.1"),
                ("webpack", "5.96.1"),
                ("lodash", "4.17.21"),
            ]),
            uninstalled_dev_dependencies: Vec::new(),
            offline: false,
            generated_packages: 400,
            generated_files_per_package: 24,
            show_npm_output: false,
        }
    }

    /// A few large libraries (~13k files in a handful of packages): many files, few packages,
    /// so `npm ci` is quicker per file than for [`SampleProject::web_app`].
    pub fn big_libraries() -> Self {
        SampleProject {
            dependencies: pairs(&[
                ("date-fns", "2.30.0"),
                ("lodash", "4.17.21"),
                ("rxjs", "7.8.1"),
                ("core-js", "3.37.1"),
                ("yargs", "17.7.2"),
            ]),
            ..Self::web_app()
        }
    }

    /// Builds the project in `root` (created if missing) and commits it on branch `main`.
    /// `log` receives one line per phase.
    pub fn build(&self, root: &Path, log: &dyn Fn(&str)) -> Result<BuiltProject> {
        for i in 0..self.source_files {
            write(
                &root.join(format!("src/area-{}/mod-{}/file-{i}.js", i % 16, i % 97)),
                &format!(
                    "// module {i}\nexport function f{i}(x) {{\n  return x * {i} + 1;\n}}\n// {}\n",
                    "x".repeat(i % 400)
                ),
            )?;
        }
        write(&root.join("README.md"), &format!("# {}\n", self.name))?;
        write(
            &root.join(".gitignore"),
            "node_modules/\n.env\n.claude/\n.worktrees/\n",
        )?;
        let section = |v: &[(String, String)]| -> serde_json::Map<String, serde_json::Value> {
            v.iter()
                .map(|(n, ver)| (n.clone(), serde_json::json!(ver)))
                .collect()
        };
        let mut pkg = serde_json::json!({
            "name": self.name, "version": "1.0.0", "private": true,
            "dependencies": section(&self.dependencies),
        });
        write_json(&root.join("package.json"), &pkg)?;
        run(&["git", "init", "-q", "-b", "main"], root, false)?;
        run(
            &["git", "config", "user.email", "sample@vibetrees.invalid"],
            root,
            false,
        )?;
        run(
            &["git", "config", "user.name", "vibetrees sample"],
            root,
            false,
        )?;
        let mut installed_by_npm = false;
        if !self.offline {
            log(&format!(
                "Installing {} packages with npm (real node_modules)...",
                self.dependencies.len()
            ));
            match run(
                &["npm", "install", "--no-audit", "--no-fund"],
                root,
                self.show_npm_output,
            ) {
                Ok(()) => installed_by_npm = true,
                Err(e) => log(&format!(
                    "npm install failed, generating node_modules instead: {}",
                    e.full_message()
                )),
            }
        }
        if !installed_by_npm {
            self.generate_node_modules(root)?;
        }
        // Only without npm: `npm ci` would fail on dev dependencies that are not installed.
        if !installed_by_npm && !self.uninstalled_dev_dependencies.is_empty() {
            pkg["devDependencies"] =
                serde_json::Value::Object(section(&self.uninstalled_dev_dependencies));
            write_json(&root.join("package.json"), &pkg)?;
        }
        run(&["git", "add", "-A"], root, false)?;
        run(
            &["git", "commit", "-q", "-m", "sample project"],
            root,
            false,
        )?;
        Ok(BuiltProject {
            installed_by_npm,
            node_modules_files: count_files(&root.join("node_modules")),
        })
    }

    /// A node_modules of generated packages (package.json, lib files, nested folders) and a
    /// package-lock.json that names them.
    fn generate_node_modules(&self, root: &Path) -> Result<()> {
        let nm = root.join("node_modules");
        let mut lock = serde_json::Map::new();
        lock.insert(
            "".into(),
            serde_json::json!({ "name": self.name, "version": "1.0.0" }),
        );
        for p in 0..self.generated_packages {
            let name = format!("gen-pkg-{p:03}");
            let dir = nm.join(&name);
            for f in 0..self.generated_files_per_package {
                let sub = ["lib", "lib/esm", "lib/cjs", "src"][f % 4];
                write(
                    &dir.join(sub).join(format!("f{f}.js")),
                    &format!("module.exports = {f};\n").repeat(20 + f),
                )?;
            }
            write(
                &dir.join("package.json"),
                &format!(
                    "{{\"name\":\"{name}\",\"version\":\"1.0.{p}\",\"main\":\"lib/f0.js\"}}\n"
                ),
            )?;
            lock.insert(
                format!("node_modules/{name}"),
                serde_json::json!({ "version": format!("1.0.{p}") }),
            );
        }
        write_json(
            &root.join("package-lock.json"),
            &serde_json::json!({ "name": self.name, "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": lock }),
        )
    }
}

/// What [`SampleProject::build`] made.
#[derive(Debug, Clone)]
pub struct BuiltProject {
    /// True when node_modules came from a real `npm install`, false when generated.
    pub installed_by_npm: bool,
    /// Files (and symlinks) in node_modules.
    pub node_modules_files: usize,
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io_path("create", d, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io_path("write", path, e))
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    write(path, &(serde_json::to_string_pretty(v)? + "\n"))
}

/// Runs `argv` in `dir` (arguments, never a shell); a failure names the command and its stderr.
fn run(argv: &[&str], dir: &Path, show_output: bool) -> Result<()> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).current_dir(dir).stdin(Stdio::null());
    if !show_output {
        cmd.stdout(Stdio::null());
    }
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Process {
            program: argv[0].into(),
            message: format!("cannot start: {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Process {
            program: argv[0].into(),
            message: format!(
                "{} exited with {}: {}",
                argv[1..].join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Files and symlinks under `dir`, recursively (0 if it does not exist).
pub fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += count_files(&e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}
