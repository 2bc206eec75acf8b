//! The crate's layers, read from its sources: which module file uses which
//! (`use crate::…`, `use super::…`, paths in code; comments and unit tests
//! left out), checked against the directions `src/lib.rs` draws. A change
//! that makes the client use a server module, the protocol use anything of
//! the crate, or two files use each other fails here.
//!
//! `cargo test --test it layers -- --nocapture` prints the graph by folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`server::stream`, `tls` for `tls/mod.rs`) → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library module file, by module path (`lib.rs` and `main.rs` left out).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src()).unwrap().to_str().unwrap().trim_end_matches(".rs").to_owned();
        if rel == "lib" || rel == "main" {
            continue;
        }
        let module = rel.trim_end_matches("/mod").replace('/', "::");
        out.insert(module, std::fs::read_to_string(&file).unwrap());
    }
    out
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The module paths a file's code names: `crate::a::b::C` and
/// `super::x::Y`, including those inside `use crate::{a::B, c}` groups.
fn references(module: &str, children: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        if start > 0 && (word(start - 1) || bytes[start - 1] == b':') {
            continue; // `foo_crate::`, or `super::super::` counted from its first
        }
        // The base: the crate root, or the parent of this module (of a
        // `mod.rs`, `super` is the folder's parent).
        // The base: the crate root, or the parent of this module (of
        // `a/b.rs` and of `a/b/mod.rs` alike, `super` is `a`).
        let mut base: Vec<String> = if code[start..].starts_with("crate::") {
            Vec::new()
        } else {
            let mut parts: Vec<String> = module.split("::").map(str::to_owned).collect();
            parts.pop();
            parts
        };
        let mut rest = &code[start + code[start..].find("::").unwrap() + 2..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        let mut paths = Vec::new();
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                paths.push(item.trim().to_owned());
            }
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            paths.push(rest[..end].to_owned());
        }
        for p in paths {
            let mut full = base.clone();
            full.extend(p.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "{").map(str::to_owned));
            out.push(full);
        }
    }
    // A folder's `mod.rs` names its own files without a prefix (`pub use
    // pem::read_chain`): those count too.
    for child in children {
        let at = format!("{child}::");
        let named = code.match_indices(&at).any(|(i, _)| i == 0 || !(word(i - 1) || bytes[i - 1] == b':'));
        if named {
            let mut full: Vec<String> = module.split("::").map(str::to_owned).collect();
            full.push(child.clone());
            out.push(full);
        }
    }
    out
}

/// Who uses whom, between module files.
fn graph() -> Graph {
    let modules = modules();
    let mut graph = Graph::new();
    for (module, text) in &modules {
        let prefix = format!("{module}::");
        let children: Vec<String> = modules
            .keys()
            .filter_map(|m| m.strip_prefix(&prefix))
            .filter(|rest| !rest.contains("::"))
            .map(str::to_owned)
            .collect();
        let mut uses = BTreeSet::new();
        for path in references(module, &children, &code(text)) {
            // The deepest module file the path names.
            let target = (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| modules.contains_key(m));
            if let Some(target) = target.filter(|t| t != module) {
                uses.insert(target);
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The folder (top-level module) a module path lies in.
fn folder(module: &str) -> &str {
    module.split("::").next().unwrap()
}

/// A cycle, if there is one (depth-first).
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(n: &str, g: &Graph, stack: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_reader_of_the_sources_sees_what_is_used() {
    // The checker itself: a reference in code counts, one in a comment or a
    // unit test does not, a `use` group counts each of its items.
    let code = code(
        "use super::{a, b::C};\n// crate::x\nfn f() { crate::y::z(); }\n#[cfg(test)]\nmod tests { use crate::w; }",
    );
    let refs = references("p::q", &[], &code);
    assert_eq!(refs, vec![vec!["y", "z"], vec!["p", "a"], vec!["p", "b", "C"]]);
    let g = graph();
    assert!(g["server::stream"].contains("tree::store"), "{:?}", g["server::stream"]);
    assert!(g["client::download"].contains("protocol::sse"), "{:?}", g["client::download"]);
}

#[test]
fn no_module_file_uses_one_that_uses_it_back() {
    let g = graph();
    println!("uses, by file:");
    for (from, to) in &g {
        println!("  {from} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert_eq!(cycle(&g), None, "an import circle");
}

#[test]
fn dependencies_between_folders_point_one_way() {
    // What each folder may use besides itself.
    let allowed: &[(&str, &[&str])] = &[
        ("protocol", &[]),
        ("logsafe", &[]),
        ("safefile", &[]),
        ("tls", &["safefile", "logsafe"]),
        ("tree", &["protocol", "logsafe"]),
        ("client", &["protocol", "tls", "safefile", "logsafe"]),
        ("live", &["tree", "protocol", "logsafe"]),
        ("server", &["live", "tree", "protocol", "tls", "safefile", "logsafe"]),
        ("cli", &["server", "live", "client", "tree", "protocol", "tls", "safefile", "logsafe"]),
    ];
    let g = graph();
    let mut by_folder: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, uses) in &g {
        for used in uses {
            if folder(used) != folder(module) {
                by_folder.entry(folder(module)).or_default().insert(folder(used));
            }
        }
    }
    println!("uses, by folder:");
    for (from, to) in &by_folder {
        println!("  {from} -> {}", to.iter().copied().collect::<Vec<_>>().join(", "));
    }
    for (module, uses) in &g {
        let Some((_, may)) = allowed.iter().find(|(f, _)| *f == folder(module)) else {
            panic!("{module}: a folder lib.rs does not place; add it to its map and to this test")
        };
        for used in uses {
            let f = folder(used);
            assert!(
                f == folder(module) || may.contains(&f),
                "{module} uses {used}: {} may not use {f}",
                folder(module)
            );
        }
    }
}

#[test]
fn src_holds_a_handful_of_entries() {
    let entries: Vec<_> = std::fs::read_dir(src()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(entries.len() <= 12, "src/ has {} entries: {entries:?}", entries.len());
}
