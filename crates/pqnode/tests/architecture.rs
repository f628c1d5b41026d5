//! The binary's modules depend on each other one way: no cycle between its top-level
//! modules (`node` builds the `state` the `api` serves; `cli` reads `config`, never the
//! reverse). A new `use crate::…` that closes a loop fails here, with the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module of `path` (relative to `src/`): `api/p2p.rs` -> `api`.
fn module_of(path: &Path) -> String {
    let first = path.components().next().expect("a path under src");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let from = module_of(path.strip_prefix(&src).expect("under src"));
            let text = std::fs::read_to_string(&path).expect("read file");
            // Test modules may reach anywhere; only the code that ships counts.
            let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
            let targets = graph.entry(from.clone()).or_default();
            for (i, _) in shipped.match_indices("crate::") {
                let rest = &shipped[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != from {
                    targets.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if any, as the list of modules on it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in graph.get(at).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_owned());
            return Some(cycle);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(cycle) = cycle_from(graph, start, next, path, seen) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_binarys_modules_form_no_cycle() {
    let graph = edges();
    assert!(
        graph.contains_key("node") && graph.contains_key("api"),
        "{graph:?}"
    );
    // `main` declares every module; it is the root, not a dependency of anyone.
    for module in graph.keys().filter(|m| *m != "main") {
        let mut path = vec![module.clone()];
        let cycle = cycle_from(&graph, module, module, &mut path, &mut BTreeSet::new());
        assert!(
            cycle.is_none(),
            "modules import each other in a circle: {cycle:?}"
        );
    }
    for (module, forbidden) in [("config", "cli"), ("api", "node"), ("components", "api")] {
        assert!(
            !graph[module].contains(forbidden),
            "{module} must not depend on {forbidden}"
        );
    }
}

/// The `pqnode-*` crates a crate's `Cargo.toml` lists under `[dependencies]`, short names.
fn manifest_dependencies(manifest: &str) -> BTreeSet<String> {
    manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies]"))
        .flat_map(|section| section.lines().skip(1))
        .filter_map(|line| line.strip_prefix("pqnode-"))
        .filter_map(|rest| rest.split(['.', ' ', '=']).next())
        .map(str::to_owned)
        .collect()
}

/// `docs/architecture.md`'s crate table is the architecture as a reader meets it: it must
/// list every crate once, with its dependencies exactly as `Cargo.toml` has them, and every
/// dependency must sit in a lower layer. A new dependency that breaks the layering fails
/// here, and so does a table left behind.
#[test]
fn the_documented_crate_graph_is_the_real_one_and_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("read doc");
    // Rows: | layer | `crate` | what | depends on |
    let mut table: BTreeMap<String, (u32, BTreeSet<String>)> = BTreeMap::new();
    for row in doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("| `pqnode"))
    {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let (Ok(layer), Some(name)) = (cells[0].parse::<u32>(), cells.get(1)) else {
            continue;
        };
        let name = name.trim_matches('`').to_owned();
        let deps = cells
            .last()
            .expect("a depends-on cell")
            .split(", ")
            .filter(|d| *d != "—")
            .map(str::to_owned)
            .collect();
        assert!(
            table.insert(name.clone(), (layer, deps)).is_none(),
            "{name} is listed twice"
        );
    }
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("read crates") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let Some((layer, documented)) = table.get(&name) else {
            panic!("{name} is missing from docs/architecture.md's crate table");
        };
        let real = manifest_dependencies(&manifest);
        assert_eq!(
            &real, documented,
            "{name}: Cargo.toml's dependencies differ from docs/architecture.md's"
        );
        for dep in &real {
            let below = table
                .get(&format!("pqnode-{dep}"))
                .is_some_and(|(l, _)| l < layer);
            assert!(
                below,
                "{name} (layer {layer}) depends on pqnode-{dep}, not below it"
            );
        }
        crates.insert(name);
    }
    let documented: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(
        documented, crates,
        "the table lists crates that do not exist"
    );
}
