//! Benchmark of the node_modules cache restore against `cp -al`, `cp -a`, `npm ci --offline`
//! (warm npm cache) and `bun install --backend=hardlink` (warm bun cache, when bun is installed).
//!
//! Run: `cargo bench -p vibetrees-core --bench cache_restore` (docs/cache.md shows the output).
//! Environment:
//! - `VT_BENCH_DIR`: where trees, caches and destinations go (default `<target>/cache-bench`,
//!   which must be on the filesystem you want to measure);
//! - `VT_BENCH_SIZES`: generated tree sizes in files (default `10000,100000`);
//! - `VT_BENCH_ROUNDS`: rounds per contender (default 5; 3 for trees over 50k files);
//! - `VT_BENCH_REAL`: the real npm projects to run, `web`, `libs` or both (default); `0` skips
//!   them (they need npm and, the first time, the registry).
//!
//! Method: contenders alternate (A B C A B C ...) in one run; every run writes into a new folder
//! (the ext4 here does not reuse recently freed inodes, so delete-and-recreate would measure that
//! instead); destinations are deleted only after the series; medians, ratios to `cp -al`, files/s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vibetrees_core::cache::{
    CacheKey, CacheOptions, NodeModulesCache, RestoreMethod, RestoreOptions,
};

/// Deterministic pseudo-random numbers for the generated trees.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A node_modules of about `files` files shaped like a real one: thousands of package folders
/// (~18 files per folder), a few big packages, scoped and nested packages, `.bin` symlinks with
/// exec bits, file sizes from a few hundred bytes to tens of KiB.
fn generate(root: &Path, files: usize) -> std::io::Result<()> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let mut rng = Lcg(files as u64);
    std::fs::create_dir_all(root.join(".bin"))?;
    let blob: Vec<u8> = (0..65536u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz ;{}()\n"[(i as usize * 7 + i as usize / 13) % 33])
        .collect();
    let mut made = 0usize;
    let mut p = 0usize;
    while made < files {
        // Package size: mostly small, sometimes big (power-law-ish).
        let r = rng.below(1000);
        let n = if r < 700 {
            3 + rng.below(12) as usize
        } else if r < 950 {
            15 + rng.below(60) as usize
        } else if r < 995 {
            80 + rng.below(400) as usize
        } else {
            600 + rng.below(2500) as usize
        }
        .min(files - made)
        .max(1);
        let name = if p % 6 == 0 {
            format!("@scope{}/pkg-{p}", p % 40)
        } else {
            format!("pkg-{p}")
        };
        let dir = if p % 17 == 0 && p > 0 {
            root.join(format!("pkg-{}", p - 1))
                .join("node_modules")
                .join(format!("nested-{p}"))
        } else {
            root.join(&name)
        };
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("package.json"),
            format!("{{\"name\":\"{name}\",\"version\":\"1.0.{p}\"}}\n"),
        )?;
        made += 1;
        let mut sub_dirs = vec![dir.clone()];
        for i in 1..n {
            if i % 18 == 0 {
                let d = sub_dirs[rng.below(sub_dirs.len() as u64) as usize].join(format!("d{i}"));
                std::fs::create_dir_all(&d)?;
                sub_dirs.push(d);
            }
            let d = &sub_dirs[rng.below(sub_dirs.len() as u64) as usize];
            let size = match rng.below(10) {
                0..=5 => 200 + rng.below(1800),
                6..=8 => 2000 + rng.below(8000),
                _ => 10000 + rng.below(50000),
            } as usize;
            let off = rng.below(1000) as usize;
            std::fs::write(
                d.join(format!("f{i}.js")),
                &blob[off..off + size.min(65536 - off)],
            )?;
            made += 1;
        }
        if p % 10 == 0 {
            let cli = dir.join("cli.js");
            std::fs::write(&cli, "#!/usr/bin/env node\nrequire('./index.js');\n")?;
            std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755))?;
            made += 1;
            let link = root.join(".bin").join(format!("cli-{p}"));
            let rel = dir.strip_prefix(root).unwrap().join("cli.js");
            symlink(Path::new("..").join(rel), link)?;
        }
        p += 1;
    }
    Ok(())
}

fn count_files(root: &Path) -> u64 {
    fn walk(p: &Path, n: &mut u64) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path(), n),
                    Ok(t) if t.is_file() => *n += 1,
                    _ => {}
                }
            }
        }
    }
    let mut n = 0;
    walk(root, &mut n);
    n
}

/// CPU time (user + system) of this process's threads, or of its waited-for children.
fn cpu_time(who: i32) -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

thread_local! {
    /// CPU time of the last timed run, read by `series`.
    static LAST_CPU: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Times `f` (wall clock returned, CPU time of this process kept in LAST_CPU).
fn timed_in_process(f: impl FnOnce()) -> Duration {
    let c = cpu_time(libc::RUSAGE_SELF);
    let t = Instant::now();
    f();
    let d = t.elapsed();
    LAST_CPU.with(|l| l.set(cpu_time(libc::RUSAGE_SELF).saturating_sub(c)));
    d
}

fn run(cmd: &mut Command) -> Duration {
    let c = cpu_time(libc::RUSAGE_CHILDREN);
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let d = t.elapsed();
    LAST_CPU.with(|l| l.set(cpu_time(libc::RUSAGE_CHILDREN).saturating_sub(c)));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

type Contender<'a> = (&'a str, Box<dyn FnMut(&Path) -> Duration + 'a>);

/// Runs every contender `rounds` times, alternating, each into a new folder under `runs`.
fn series(
    title: &str,
    files: u64,
    rounds: usize,
    runs: &Path,
    contenders: &mut [Contender<'_>],
) -> String {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for (i, (name, f)) in contenders.iter_mut().enumerate() {
            let dest = runs.join(format!("{}-{round}", name.replace([' ', '/'], "_")));
            std::fs::create_dir_all(&dest).unwrap();
            let d = f(&dest);
            let cpu = LAST_CPU.with(|l| l.get());
            times[i].push(d.as_secs_f64() * 1e3);
            cpus[i].push(cpu.as_secs_f64() * 1e3);
            eprintln!(
                "  {title} round {round}: {name}: {:.1} ms (cpu {:.1} ms)",
                d.as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e3
            );
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        }
    };
    let cp_al = contenders
        .iter()
        .position(|(n, _)| *n == "cp -al")
        .map(|i| median(&times[i]));
    let cp_al_cpu = contenders
        .iter()
        .position(|(n, _)| *n == "cp -al")
        .map(|i| median(&cpus[i]));
    let mut out = format!(
        "\n### {title}: {files} files, {rounds} rounds\n\n| contender | median | min | max | vs `cp -al` | files/s | CPU median | CPU vs `cp -al` |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for (i, (name, _)) in contenders.iter().enumerate() {
        let m = median(&times[i]);
        let min = times[i].iter().cloned().fold(f64::MAX, f64::min);
        let max = times[i].iter().cloned().fold(0.0, f64::max);
        let ratio = cp_al
            .map(|c| format!("{:.2}×", m / c))
            .unwrap_or_else(|| "-".into());
        let cpu = median(&cpus[i]);
        let cpu_ratio = cp_al_cpu
            .map(|c| format!("{:.2}×", cpu / c))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| {name} | {m:.1} ms | {min:.1} ms | {max:.1} ms | {ratio} | {:.0} | {cpu:.1} ms | {cpu_ratio} |\n",
            files as f64 / (m / 1e3)
        ));
    }
    // The issue's targets, as ratios of medians of this run: faster than bun, and at least 100x
    // faster than `npm ci --offline`.
    let med = |prefix: &str| {
        contenders
            .iter()
            .position(|(n, _)| n.starts_with(prefix))
            .map(|i| median(&times[i]))
    };
    if let Some(ours) = med("vibetrees (library, auto, verified)") {
        out.push('\n');
        if let Some(npm) = med("npm ci") {
            out.push_str(&format!(
                "- `npm ci --offline` / vibetrees (verified) = **{:.0}×** (target ≥ 100×)\n",
                npm / ours
            ));
        }
        if let Some(bun) = med("bun install") {
            out.push_str(&format!(
                "- bun hardlink install / vibetrees (verified) = **{:.2}×** (target > 1)\n",
                bun / ours
            ));
        }
    }
    out
}

fn vibetrees_contenders<'a>(
    cache: &'a NodeModulesCache,
    key: &'a CacheKey,
    cache_dir: &'a Path,
) -> Vec<Contender<'a>> {
    let lib = move |method: RestoreMethod, skip_verify: bool| {
        move |dest: &Path| {
            timed_in_process(|| {
                cache
                    .restore(
                        key,
                        &dest.join("node_modules"),
                        &RestoreOptions {
                            method,
                            skip_verify,
                            ..Default::default()
                        },
                    )
                    .unwrap();
            })
        }
    };
    let mut contenders: Vec<Contender<'a>> = vec![
        (
            "vibetrees (library, auto, verified)",
            Box::new(lib(RestoreMethod::Auto, false)),
        ),
        (
            "vibetrees (library, auto, unverified)",
            Box::new(lib(RestoreMethod::Auto, true)),
        ),
        (
            "vibetrees cache restore (CLI process)",
            Box::new(move |dest: &Path| {
                run(Command::new(env!("CARGO_BIN_EXE_vibetrees"))
                    .args(["cache", "restore", "--key", key.as_str(), "--target"])
                    .arg(dest.join("node_modules"))
                    .arg("--cache-dir")
                    .arg(cache_dir))
            }),
        ),
    ];
    // Where the filesystem clones (APFS, XFS, btrfs), clones against auto's hardlinks: what
    // decides whether auto should clone first there (docs/platform.md).
    if can_clone(cache_dir) {
        contenders.push((
            "vibetrees (library, clone-or-copy, verified)",
            Box::new(lib(RestoreMethod::CloneOrCopy, false)),
        ));
    }
    contenders
}

/// Whether a file in `dir` can be cloned beside itself (one tiny file, removed again).
fn can_clone(dir: &Path) -> bool {
    use rustix::fd::AsFd;
    use vibetrees_core::platform;
    let scratch = dir.join(format!(".clone-probe-{}", std::process::id()));
    let (src, dst) = (scratch.join("src"), scratch.join("dst"));
    let ok = std::fs::create_dir_all(&src).is_ok()
        && std::fs::create_dir_all(&dst).is_ok()
        && std::fs::write(src.join("f"), b"probe").is_ok()
        && match (
            platform::open_dir_handle_path(&src),
            platform::open_dir_handle_path(&dst),
        ) {
            (Ok(s), Ok(d)) => platform::clone_file_at(s.as_fd(), d.as_fd(), c"f", 0o644).is_ok(),
            _ => false,
        };
    let _ = std::fs::remove_dir_all(&scratch);
    ok
}

fn cp_contenders<'a>(src: &'a Path) -> Vec<Contender<'a>> {
    vec![
        (
            "cp -al",
            Box::new(move |dest: &Path| {
                run(Command::new("cp")
                    .arg("-al")
                    .arg(src)
                    .arg(dest.join("node_modules")))
            }),
        ),
        (
            "cp -a",
            Box::new(move |dest: &Path| {
                run(Command::new("cp")
                    .arg("-a")
                    .arg(src)
                    .arg(dest.join("node_modules")))
            }),
        ),
    ]
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let base = std::env::var_os("VT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/cache-bench"));
    let sizes: Vec<usize> = std::env::var("VT_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds_env: Option<usize> = std::env::var("VT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let runs = base.join(format!(
        "runs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    ));
    std::fs::create_dir_all(&runs).unwrap();
    let _cleanup = DeleteOnDrop(runs.clone());
    let cache_dir = base.join("cache");
    let cache = NodeModulesCache::open(CacheOptions {
        cache_dir: Some(cache_dir.clone()),
        ..Default::default()
    })
    .unwrap();
    let mut report = format!(
        "## node_modules restore benchmark\n\nmachine: {} cores, kernel {}, bench folder {} ({}); workers {}\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        base.display(),
        String::from_utf8_lossy(
            &Command::new("stat")
                .args(["-f", "-c", "%T"])
                .arg(&base)
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .trim(),
        std::thread::available_parallelism()
            .map(|n| (n.get() * 2).clamp(2, 8))
            .unwrap_or(2),
    );

    for &size in &sizes {
        let tree = base.join(format!("trees/gen-{size}/node_modules"));
        let marker = base.join(format!("trees/gen-{size}/.complete"));
        if !marker.exists() {
            eprintln!("generating a {size}-file tree in {} (once)", tree.display());
            let _ = std::fs::remove_dir_all(tree.parent().unwrap());
            generate(&tree, size).unwrap();
            std::fs::write(&marker, "").unwrap();
        }
        let key =
            CacheKey::parse(&blake3::hash(format!("gen-{size}").as_bytes()).to_hex()).unwrap();
        let files = cache
            .populate(&key, &tree)
            .unwrap()
            .files
            .max(count_files(&tree));
        let rounds = rounds_env.unwrap_or(if size > 50_000 { 3 } else { 5 });
        let mut contenders = vibetrees_contenders(&cache, &key, &cache_dir);
        contenders.extend(cp_contenders(&tree));
        let title = format!("generated tree, {size}");
        let dir = runs.join(format!("gen-{size}"));
        report.push_str(&series(&title, files, rounds, &dir, &mut contenders));
        eprintln!("{report}");
    }

    let real = std::env::var("VT_BENCH_REAL").unwrap_or_else(|_| "all".into());
    if real != "0" && have("npm") {
        for project in REAL_PROJECTS {
            if real == "all" || real.split(',').any(|r| r == project.slug) {
                report.push_str(&real_project(
                    project,
                    &base,
                    &runs,
                    &cache,
                    &cache_dir,
                    rounds_env.unwrap_or(3),
                ));
            }
        }
    }
    println!("{report}");
    let _ = std::fs::write(base.join("last-report.md"), &report);
}

/// Deletes the run folders after the series, also when a contender failed (not timed).
struct DeleteOnDrop(PathBuf);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        eprintln!("deleting the run folders {} (not timed)", self.0.display());
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real npm project of the benchmark.
struct RealProject {
    /// Its folder under the bench dir, and its name for `VT_BENCH_REAL`.
    slug: &'static str,
    title: &'static str,
    dependencies: &'static str,
}

/// The real projects: a typical web app's tree (many small packages: the shape of the issue's
/// 8,201-file reference tree, where `npm ci --offline` took 6.05 s) and a few big libraries
/// (fewer, larger packages: npm installs those faster per file).
const REAL_PROJECTS: &[RealProject] = &[
    RealProject {
        slug: "web",
        title: "real npm project, web app (express, jest, eslint 8, webpack, lodash: ~480 packages)",
        dependencies: r#"{"express":"4.21.1","jest":"29.7.0","eslint":"8.57.1","webpack":"5.96.1","lodash":"4.17.21"}"#,
    },
    RealProject {
        slug: "libs",
        title: "real npm project, big libraries (lodash, rxjs, eslint 9, webpack, date-fns)",
        dependencies: r#"{"lodash":"4.17.21","rxjs":"7.8.1","eslint":"9.15.0","webpack":"5.96.1","date-fns":"2.30.0"}"#,
    },
];

/// A real project installed by npm once, restored against `cp`, `npm ci --offline` and bun.
fn real_project(
    project: &RealProject,
    base: &Path,
    runs: &Path,
    cache: &NodeModulesCache,
    cache_dir: &Path,
    rounds: usize,
) -> String {
    let home = base.join(format!("real-{}", project.slug));
    let proj = home.join("project");
    let npm_cache = home.join("npm-cache");
    let bun_cache = home.join("bun-cache");
    let marker = home.join(".installed");
    let npm = |dir: &Path, args: &[&str]| {
        let mut c = Command::new("npm");
        c.args(args)
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .env("npm_config_cache", &npm_cache)
            .env("npm_config_update_notifier", "false");
        c
    };
    if !marker.exists() {
        eprintln!("installing the real project with npm (once; needs the registry)");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(
            proj.join("package.json"),
            format!(
                r#"{{"name":"vt-bench-real-{}","version":"1.0.0","private":true,"dependencies":{}}}"#,
                project.slug, project.dependencies
            ),
        )
        .unwrap();
        run(&mut npm(&proj, &["install"]));
        // `npm ci` fetches a few manifests `npm install` did not keep: one online run (not
        // timed) makes the npm cache complete for `npm ci --offline`.
        let warm = home.join("npm-warm");
        let _ = std::fs::remove_dir_all(&warm);
        std::fs::create_dir_all(&warm).unwrap();
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(proj.join(f), warm.join(f)).unwrap();
        }
        run(&mut npm(&warm, &["ci"]));
        std::fs::write(&marker, "").unwrap();
    }
    let nm = proj.join("node_modules");
    let files = count_files(&nm);
    let key = CacheKey::from_project_dir(&proj).unwrap();
    // An entry changed through a shared inode since the last run is evicted and made again.
    if cache.verify_entry(&key).unwrap().is_some() {
        cache.evict(&key).unwrap();
    }
    cache.populate(&key, &nm).unwrap();
    let fresh_project = |dest: &Path| {
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(proj.join(f), dest.join(f)).unwrap();
        }
    };
    let mut contenders = vibetrees_contenders(cache, &key, cache_dir);
    contenders.extend(cp_contenders(&nm));
    contenders.push((
        "npm ci --offline (warm npm cache)",
        Box::new(move |dest: &Path| {
            fresh_project(dest);
            run(&mut npm(dest, &["ci", "--offline"]))
        }),
    ));
    if have("bun") {
        // Warm bun's cache once (not timed), keep the lockfile it writes.
        let warm = runs.join(format!("bun-warm-{}", project.slug));
        std::fs::create_dir_all(&warm).unwrap();
        fresh_project(&warm);
        let bun = |dir: &Path| {
            let mut c = Command::new("bun");
            c.args([
                "install",
                "--backend=hardlink",
                "--no-progress",
                "--ignore-scripts",
            ])
            .current_dir(dir)
            .env("BUN_INSTALL_CACHE_DIR", &bun_cache);
            c
        };
        run(&mut bun(&warm));
        let lock = warm.join("bun.lock");
        contenders.push((
            "bun install --backend=hardlink (warm cache)",
            Box::new(move |dest: &Path| {
                fresh_project(dest);
                if lock.exists() {
                    std::fs::copy(&lock, dest.join("bun.lock")).unwrap();
                }
                run(&mut bun(dest))
            }),
        ));
    } else {
        eprintln!("bun is not installed (npm i -g bun): its row is left out");
    }
    series(
        project.title,
        files,
        rounds,
        &runs.join(format!("real-{}", project.slug)),
        &mut contenders,
    )
}
