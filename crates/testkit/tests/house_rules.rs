//! The shape the codebase keeps (issue 13): small files, one module style, and no
//! modules that import each other, checked over every crate's sources so that a new
//! file cannot quietly break them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every crate's sources, tests and benches, the example portal's and the load
/// generator's.
fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates", "examples", "bench"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    files
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = all_sources()
        .into_iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by what they hold: {long:#?}");
}

#[test]
fn modules_are_name_rs_beside_name_folder() {
    let mod_rs: Vec<_> = all_sources()
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "mod.rs"))
        .collect();
    assert!(mod_rs.is_empty(), "use name.rs beside name/: {mod_rs:#?}");
}

/// A module's path inside its crate from its file: `src/a/b.rs` is `a::b`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The modules a file names through `crate::` and `super::` paths, outside its
/// `#[cfg(test)]` module.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut refs = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        refs.push(ident(&text[i + "crate::".len()..]));
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with("super::") {
            continue; // counted from the first `super::` of the run
        }
        let rest = &text[i..];
        let ups = rest.len() - rest.trim_start_matches("super::").len();
        let ups = ups / "super::".len();
        let mut path = module[..module.len().saturating_sub(ups)].to_vec();
        path.extend(ident(&rest[ups * "super::".len()..]));
        refs.push(path);
    }
    refs
}

fn is_within(a: &[String], b: &[String]) -> bool {
    a.len() >= b.len() && a[..b.len()] == *b
}

/// Modules that reach each other through imports (parents and their children
/// aside): Tarjan's strongly connected components of more than one module.
fn circles(root: &Path) -> Vec<BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| (module_of(root, f), std::fs::read_to_string(f).unwrap()))
        .collect();
    let owner = |r: &[String]| {
        (1..=r.len())
            .rev()
            .map(|k| r[..k].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let names: Vec<&Vec<String>> = modules.keys().collect();
    let index = |m: &Vec<String>| names.iter().position(|n| *n == m).unwrap();
    let mut edges = vec![BTreeSet::new(); names.len()];
    for (module, text) in &modules {
        for r in references(module, text) {
            if let Some(target) = owner(&r) {
                if !is_within(module, &target) && !is_within(&target, module) {
                    edges[index(module)].insert(index(&target));
                }
            }
        }
    }
    Tarjan::run(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.into_iter().map(|i| names[i].join("::")).collect())
        .collect()
}

struct Tarjan<'a> {
    edges: &'a [BTreeSet<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    stack: Vec<usize>,
    on_stack: Vec<bool>,
    next: usize,
    found: Vec<Vec<usize>>,
}

impl<'a> Tarjan<'a> {
    fn run(edges: &'a [BTreeSet<usize>]) -> Vec<Vec<usize>> {
        let n = edges.len();
        let mut t = Tarjan {
            edges,
            index: vec![None; n],
            low: vec![0; n],
            stack: Vec::new(),
            on_stack: vec![false; n],
            next: 0,
            found: Vec::new(),
        };
        for v in 0..n {
            if t.index[v].is_none() {
                t.visit(v);
            }
        }
        t.found
    }

    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in self.edges[v].iter() {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.found.push(component);
        }
    }
}

#[test]
fn no_two_modules_import_each_other() {
    let mut found = Vec::new();
    for krate in [
        "crates/domain",
        "crates/store",
        "crates/web",
        "crates/server",
        "crates/testkit",
        "bench",
    ] {
        for c in circles(&workspace().join(krate).join("src")) {
            found.push(format!("{krate}: {c:?}"));
        }
    }
    assert!(found.is_empty(), "import circles: {found:#?}");
}

/// The check itself finds a circle, so that its silence means something.
#[test]
fn a_circle_is_found() {
    let dir = std::env::temp_dir().join(format!("tweestap-circles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::c::Thing;\n").unwrap();
    std::fs::write(dir.join("b.rs"), "mod c;\n").unwrap();
    std::fs::write(dir.join("b/c.rs"), "use super::super::a::Other;\n").unwrap();
    let found = circles(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a") && found[0].contains("b::c"),
        "{found:?}"
    );
}
