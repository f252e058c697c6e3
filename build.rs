//! Embeds the version, git revision and enabled backends, shown by `--version` and `/health`.
use std::process::Command;

fn main() {
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TELEMARKETER_GIT_REV={git}");
    let mut backends = vec!["cpu"];
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        backends.push("cuda");
        link_wheel_cublas();
    }
    println!(
        "cargo:rustc-env=TELEMARKETER_BACKENDS={}",
        backends.join(",")
    );
    let cpu = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .ok()
        .and_then(|f| {
            f.split('\x1f')
                .find_map(|x| x.strip_prefix("target-cpu=").map(str::to_string))
        })
        .unwrap_or_else(|| "default".into());
    println!("cargo:rustc-env=TELEMARKETER_TARGET_CPU={cpu}");
    // espeak-ng (Piper's phonemizer, built by espeak-rs-sys) needs sonic, which it does not link
    // itself when the system library is used (Debian libsonic-dev).
    println!("cargo:rustc-link-arg=-l:libsonic.a");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=build.rs");
}

/// A toolkit assembled from NVIDIA's wheels by `scripts/cuda_toolkit.sh` has no static cuBLAS
/// (llama-cpp-sys-2 links it statically; the script leaves empty archives of those names), so
/// the shared cuBLAS is linked here, after every crate's objects. An installed toolkit (the
/// CUDA devel image) has no marker file and keeps the static link.
fn link_wheel_cublas() {
    println!("cargo:rerun-if-env-changed=CUDA_PATH");
    let Some(root) = std::env::var_os("CUDA_PATH").map(std::path::PathBuf::from) else {
        return;
    };
    if root.join("TELEMARKETER_WHEEL_TOOLKIT").is_file() {
        let lib = root.join("lib64");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--push-state,--no-as-needed");
        println!("cargo:rustc-link-arg=-lcublas");
        println!("cargo:rustc-link-arg=-lcublasLt");
        println!("cargo:rustc-link-arg=-Wl,--pop-state");
    }
}
