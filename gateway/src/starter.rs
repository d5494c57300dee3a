//! `gateway plugin new` and `gateway plugin build`: a plugin project for Rust,
//! Python or JavaScript that builds and has one test, and the build of such a
//! project into `NAME.wasm` with its language's toolchain.
//!
//! The templates live in `gateway/templates/<lang>/`. Python and JavaScript
//! projects get the SDK (`wraith_plugin/`, `wraith-plugin/`) and the plugin
//! contract (`wit/`) written into them, so they build with nothing from this
//! repository; a Rust project depends on the `wraith-plugin` crate.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A plugin project's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `cargo build --target wasm32-wasip2`, with the `wraith-plugin` crate.
    Rust,
    /// componentize-py, with the `wraith_plugin` package.
    Python,
    /// componentize-js (and rolldown), with the `@wraith/plugin` module.
    Js,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!(
                "unknown language `{other}`: expected rust, python or js"
            )),
        }
    }
}

/// What went wrong making or building a project.
#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    /// The name cannot be a plugin's.
    #[error(
        "`{0}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (at most 64)"
    )]
    BadName(String),
    /// The project folder is already there.
    #[error("{} already exists: choose another name or --dir", .0.display())]
    Exists(PathBuf),
    /// The folder holds no plugin project.
    #[error(
        "{} holds no plugin project (no Cargo.toml, app.py or plugin.js): create one with `gateway plugin new NAME --lang rust|python|js`",
        .0.display()
    )]
    NotAProject(PathBuf),
    /// A toolchain command could not be started.
    #[error("cannot run `{cmd}` ({source}): {hint}")]
    Missing {
        cmd: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A toolchain command failed.
    #[error("`{cmd}` failed ({status})")]
    Failed {
        cmd: String,
        status: std::process::ExitStatus,
    },
    /// The toolchain said it succeeded but left no component.
    #[error("the build wrote no {}", .0.display())]
    NoOutput(PathBuf),
    /// Reading or writing a file.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StarterError + '_ {
    move |source| StarterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The plugin contract, written into Python and JavaScript projects.
const WIT: &[(&str, &str)] = &[
    ("wit/host.wit", include_str!("../../wit/host.wit")),
    ("wit/types.wit", include_str!("../../wit/types.wit")),
    ("wit/world.wit", include_str!("../../wit/world.wit")),
];

const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "wraith_plugin/__init__.py",
        include_str!("../../sdk/python-plugin/wraith_plugin/__init__.py"),
    ),
    (
        "wraith_plugin/flat.py",
        include_str!("../../sdk/python-plugin/wraith_plugin/flat.py"),
    ),
    (
        "wraith_plugin/testing.py",
        include_str!("../../sdk/python-plugin/wraith_plugin/testing.py"),
    ),
    (
        "wraith_plugin/_component.py",
        include_str!("../../sdk/python-plugin/wraith_plugin/_component.py"),
    ),
];

const JS_SDK: &[(&str, &str)] = &[
    (
        "wraith-plugin/package.json",
        include_str!("../../sdk/js-plugin/package.json"),
    ),
    (
        "wraith-plugin/register.js",
        include_str!("../../sdk/js-plugin/register.js"),
    ),
    (
        "wraith-plugin/bin/build.js",
        include_str!("../../sdk/js-plugin/bin/build.js"),
    ),
    (
        "wraith-plugin/src/index.js",
        include_str!("../../sdk/js-plugin/src/index.js"),
    ),
    (
        "wraith-plugin/src/flat.js",
        include_str!("../../sdk/js-plugin/src/flat.js"),
    ),
    (
        "wraith-plugin/src/testing.js",
        include_str!("../../sdk/js-plugin/src/testing.js"),
    ),
    (
        "wraith-plugin/src/component.js",
        include_str!("../../sdk/js-plugin/src/component.js"),
    ),
    (
        "wraith-plugin/src/resolve.js",
        include_str!("../../sdk/js-plugin/src/resolve.js"),
    ),
];

const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    ("README.md", include_str!("../templates/rust/README.md")),
    (".gitignore", include_str!("../templates/rust/gitignore")),
];

const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("../templates/python/app.py")),
    (
        "test_app.py",
        include_str!("../templates/python/test_app.py"),
    ),
    ("README.md", include_str!("../templates/python/README.md")),
    (".gitignore", include_str!("../templates/python/gitignore")),
];

const JS: &[(&str, &str)] = &[
    ("plugin.js", include_str!("../templates/js/plugin.js")),
    (
        "plugin.test.js",
        include_str!("../templates/js/plugin.test.js"),
    ),
    ("README.md", include_str!("../templates/js/README.md")),
    (".gitignore", include_str!("../templates/js/gitignore")),
];

/// The componentize-py release Python plugins are built with.
pub const COMPONENTIZE_PY: &str = include_str!("../../sdk/python-plugin/tools.txt");

/// The npm packages JavaScript plugins are built with, pinned (a JSON object
/// of name to version).
pub const JS_TOOLS: &str = include_str!("../../sdk/js-plugin/tools.json");

/// Whether `name` can name a plugin (and so its `.wasm` and its project).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// `my-scrubber` → `MyScrubber`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// How a new Rust project depends on `wraith-plugin`: the SDK in the Wraith
/// checkout this gateway was built from when it is still there, otherwise
/// the project's repository at this release.
fn rust_sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/plugin");
    match sdk.canonicalize() {
        Ok(p) if p.join("Cargo.toml").is_file() => {
            format!("{{ path = {:?} }}", p.display().to_string())
        }
        _ => format!(
            "{{ git = {:?}, tag = \"v{}\" }}",
            env!("CARGO_PKG_REPOSITORY"),
            env!("CARGO_PKG_VERSION")
        ),
    }
}

fn js_package_json(name: &str) -> String {
    let tools: serde_json::Value =
        serde_json::from_str(JS_TOOLS).expect("sdk/js-plugin/tools.json is JSON");
    let pkg = serde_json::json!({
        "name": name,
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "scripts": {
            "build": format!("node wraith-plugin/bin/build.js plugin.js --wit wit -o {name}.wasm"),
            "test": "node --import ./wraith-plugin/register.js --test"
        },
        "devDependencies": tools,
    });
    serde_json::to_string_pretty(&pkg).expect("serialisable") + "\n"
}

/// Write a new plugin project into `dir/name`; returns its folder.
pub fn new_project(name: &str, lang: Lang, dir: &Path) -> Result<PathBuf, StarterError> {
    if !valid_name(name) {
        return Err(StarterError::BadName(name.to_string()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(StarterError::Exists(root));
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{componentize_py}}", COMPONENTIZE_PY.trim())
    };
    let mut files: Vec<(String, String)> = Vec::new();
    match lang {
        Lang::Rust => {
            for (p, t) in RUST {
                files.push((
                    p.to_string(),
                    fill(t).replace("{{sdk}}", &rust_sdk_dependency()),
                ));
            }
        }
        Lang::Python => {
            files.extend(PYTHON.iter().map(|(p, t)| (p.to_string(), fill(t))));
            files.extend(
                PYTHON_SDK
                    .iter()
                    .chain(WIT)
                    .map(|(p, t)| (p.to_string(), t.to_string())),
            );
        }
        Lang::Js => {
            files.extend(JS.iter().map(|(p, t)| (p.to_string(), fill(t))));
            files.push(("package.json".into(), js_package_json(name)));
            files.extend(
                JS_SDK
                    .iter()
                    .chain(WIT)
                    .map(|(p, t)| (p.to_string(), t.to_string())),
            );
        }
    }
    for (rel, text) in &files {
        let path = root.join(rel);
        let parent = path.parent().expect("files are inside the project");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(root)
}

/// The language of the project in `dir`.
pub fn detect(dir: &Path) -> Result<Lang, StarterError> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("app.py").is_file() {
        Ok(Lang::Python)
    } else if dir.join("plugin.js").is_file() {
        Ok(Lang::Js)
    } else {
        Err(StarterError::NotAProject(dir.to_path_buf()))
    }
}

fn run(cmd: &mut Command, hint: &'static str) -> Result<(), StarterError> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("gateway plugin build: {shown}");
    let status = cmd.status().map_err(|source| StarterError::Missing {
        cmd: shown.clone(),
        hint,
        source,
    })?;
    if !status.success() {
        return Err(StarterError::Failed { cmd: shown, status });
    }
    Ok(())
}

/// Build the project in `dir` into `dir/NAME.wasm` (NAME is the folder's
/// name); returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf, StarterError> {
    let dir = dir.canonicalize().map_err(io(dir))?;
    let lang = detect(&dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let out = dir.join(format!("{name}.wasm"));
    match lang {
        Lang::Rust => {
            run(
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .current_dir(&dir)
                    .args(["build", "--target", "wasm32-wasip2", "--release"]),
                "install Rust with rustup, then `rustup target add wasm32-wasip2`",
            )?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("target"));
            let crate_name = package_name(&dir)?.replace('-', "_");
            let built = target.join(format!("wasm32-wasip2/release/{crate_name}.wasm"));
            std::fs::copy(&built, &out).map_err(io(&built))?;
        }
        Lang::Python => {
            let tool = componentize_py(&dir)?;
            run(
                Command::new(tool)
                    .current_dir(&dir)
                    .args([
                        "-d",
                        "wit",
                        "-w",
                        "wraith-plugin",
                        "componentize",
                        "app",
                        "-p",
                        ".",
                        "-o",
                    ])
                    .arg(&out),
                "install it with `pip install componentize-py`",
            )?;
        }
        Lang::Js => {
            if std::env::var_os("WRAITH_NODE_TOOLS").is_none() && !dir.join("node_modules").is_dir()
            {
                run(
                    Command::new("npm").current_dir(&dir).args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                    ]),
                    "install Node.js 20 or newer (with npm)",
                )?;
            }
            run(
                Command::new("node")
                    .current_dir(&dir)
                    .args([
                        "wraith-plugin/bin/build.js",
                        "plugin.js",
                        "--wit",
                        "wit",
                        "-o",
                    ])
                    .arg(&out),
                "install Node.js 20 or newer",
            )?;
        }
    }
    if !out.is_file() {
        return Err(StarterError::NoOutput(out));
    }
    Ok(out)
}

fn package_name(dir: &Path) -> Result<String, StarterError> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| StarterError::Io {
        path: manifest.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| StarterError::Io {
            path: manifest,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no [package] name"),
        })
}

/// componentize-py: `WRAITH_COMPONENTIZE_PY`, the project's `.venv`, the
/// `PATH`, or else installed into the project's `.venv` from PyPI.
fn componentize_py(dir: &Path) -> Result<PathBuf, StarterError> {
    if let Some(p) = std::env::var_os("WRAITH_COMPONENTIZE_PY") {
        return Ok(PathBuf::from(p));
    }
    let venv = dir.join(".venv");
    let local = venv.join("bin/componentize-py");
    if local.is_file() {
        return Ok(local);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|d| d.join("componentize-py"))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "install Python 3 with the venv module (Debian: python3-venv)",
    )?;
    run(
        Command::new(venv.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY.trim()]),
        "pip could not be started from the new .venv",
    )?;
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert!(valid_name("my-scrubber2"));
        for bad in ["", "My", "1a", "a_b", "a-", "a.b", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(type_name("my-scrubber2"), "MyScrubber2");
        assert_eq!("py".parse::<Lang>(), Ok(Lang::Python));
        assert!(
            "go".parse::<Lang>()
                .unwrap_err()
                .contains("rust, python or js")
        );
    }

    #[test]
    fn every_language_gets_its_files_and_no_placeholder_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        for (lang, must) in [
            (Lang::Rust, &["Cargo.toml", "src/lib.rs", "README.md"][..]),
            (
                Lang::Python,
                &[
                    "app.py",
                    "test_app.py",
                    "wraith_plugin/flat.py",
                    "wit/world.wit",
                ][..],
            ),
            (
                Lang::Js,
                &[
                    "plugin.js",
                    "package.json",
                    "wraith-plugin/bin/build.js",
                    "wit/types.wit",
                ][..],
            ),
        ] {
            let name = format!("p-{lang:?}").to_lowercase();
            let root = new_project(&name, lang, tmp.path()).unwrap();
            for f in must {
                assert!(root.join(f).is_file(), "{lang:?}: no {f}");
            }
            for f in ["README.md", must[0], must[1]] {
                let text = std::fs::read_to_string(root.join(f)).unwrap();
                assert!(!text.contains("{{"), "{lang:?} {f}: {text}");
            }
            let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
            let first = readme
                .split("```sh\n")
                .nth(1)
                .unwrap()
                .lines()
                .next()
                .unwrap();
            assert_eq!(first, "gateway plugin build", "{lang:?}");
            assert_eq!(detect(&root).unwrap(), lang);
            assert!(matches!(
                new_project(&name, lang, tmp.path()),
                Err(StarterError::Exists(_))
            ));
        }
        assert!(matches!(
            new_project("Bad", Lang::Rust, tmp.path()),
            Err(StarterError::BadName(_))
        ));
        assert!(matches!(
            detect(tmp.path()),
            Err(StarterError::NotAProject(_))
        ));
    }
}
