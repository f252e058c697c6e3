//! Builds whisper.cpp as a static library against llama-cpp-sys-2's installed ggml.
//!
//! llama-cpp-sys-2 exports `DEP_LLAMA_GGML_CMAKE_DIR` (its install's `lib/cmake`). whisper.cpp's
//! `WHISPER_USE_SYSTEM_GGML=ON` then calls `find_package(ggml)` there. We emit link lines for
//! `whisper` only: llama-cpp-sys-2 already links ggml, ggml-base and ggml-cpu (and CUDA if enabled).
use std::env;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let ggml_cmake_dir = PathBuf::from(
        env::var("DEP_LLAMA_GGML_CMAKE_DIR")
            .expect("llama-cpp-sys-2 did not export DEP_LLAMA_GGML_CMAKE_DIR (version mismatch?)"),
    );
    // <prefix>/lib/cmake -> <prefix>
    let ggml_prefix = ggml_cmake_dir
        .parent()
        .and_then(|p| p.parent())
        .expect("ggml cmake dir has a prefix")
        .to_path_buf();
    let ggml_include = ggml_prefix.join("include");

    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");

    let bindings = bindgen::Builder::default()
        .rust_edition(bindgen::RustEdition::Edition2021)
        .header("wrapper.h")
        .clang_arg("-I./whisper.cpp/include")
        .clang_arg(format!("-I{}", ggml_include.display()))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate();
    match bindings {
        Ok(b) => b
            .write_to_file(out.join("bindings.rs"))
            .expect("write bindings.rs"),
        Err(e) => {
            println!("cargo:warning=bindgen failed ({e}); using bundled bindings.rs");
            std::fs::copy("src/bindings.rs", out.join("bindings.rs")).expect("copy bindings.rs");
        }
    }

    let mut config = cmake::Config::new("whisper.cpp");
    config
        .profile("Release")
        .define("BUILD_SHARED_LIBS", "OFF")
        .define("WHISPER_USE_SYSTEM_GGML", "ON")
        .define("ggml_DIR", ggml_cmake_dir.join("ggml"))
        .define("CMAKE_PREFIX_PATH", &ggml_prefix)
        .define("WHISPER_ALL_WARNINGS", "OFF")
        .define("WHISPER_ALL_WARNINGS_3RD_PARTY", "OFF")
        .define("WHISPER_BUILD_TESTS", "OFF")
        .define("WHISPER_BUILD_EXAMPLES", "OFF")
        .define("WHISPER_BUILD_SERVER", "OFF")
        .define("CMAKE_BUILD_TYPE", "Release")
        .pic(true);
    let dst = config.build();

    for lib in ["lib", "lib64"] {
        println!("cargo:rustc-link-search=native={}", dst.join(lib).display());
    }
    println!("cargo:rustc-link-lib=static=whisper");
    println!("cargo:rustc-link-lib=dylib=stdc++");

    // whisper-rs's build script reads this (DEP_WHISPER_WHISPER_CPP_VERSION).
    let cmake_lists = std::fs::read_to_string("whisper.cpp/CMakeLists.txt").expect("CMakeLists.txt");
    let version = cmake_lists
        .lines()
        .find_map(|l| l.strip_prefix("project(\"whisper.cpp\" VERSION "))
        .map(|v| v.trim_end_matches(')').to_string())
        .expect("whisper.cpp version in CMakeLists.txt");
    println!("cargo:WHISPER_CPP_VERSION={version}");
}
