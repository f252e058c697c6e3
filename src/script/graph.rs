//! A script as a graph: its nodes in reading order (layers from the entry nodes) and an SVG
//! drawing of nodes and transitions for the console, rendered here so the page needs no
//! drawing library. Pure.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;

use super::format::Script;

/// One transition: from, to, and what takes it (an intent's name, `fallback`, `known`).
pub type Edge = (String, String, String);

/// Every transition of the script, in node order.
pub fn edges(script: &Script) -> Vec<Edge> {
    let mut out = Vec::new();
    for node in script.nodes.values() {
        for i in &node.intents {
            out.push((node.id.clone(), i.next.clone(), i.name.clone()));
        }
        if let Some(f) = &node.fallback {
            out.push((node.id.clone(), f.clone(), "fallback".into()));
        }
        if let Some(k) = &node.skip_if_known {
            out.push((node.id.clone(), k.clone(), "known".into()));
        }
    }
    out.retain(|(_, to, _)| script.nodes.contains_key(to));
    out
}

/// Each node's layer: its distance from the entry nodes (`start`, the inbound entry); nodes
/// no transition reaches come last.
pub fn layers(script: &Script) -> BTreeMap<String, usize> {
    let edges = edges(script);
    let mut layer = BTreeMap::new();
    let mut queue = VecDeque::new();
    for entry in [&script.start, &script.inbound_start] {
        if script.nodes.contains_key(entry) && !layer.contains_key(entry) {
            layer.insert(entry.clone(), 0);
            queue.push_back(entry.clone());
        }
    }
    while let Some(n) = queue.pop_front() {
        let d = layer[&n];
        for (_, to, _) in edges.iter().filter(|(from, _, _)| *from == n) {
            if !layer.contains_key(to) {
                layer.insert(to.clone(), d + 1);
                queue.push_back(to.clone());
            }
        }
    }
    let deepest = layer.values().copied().max().unwrap_or(0);
    for id in script.nodes.keys() {
        layer.entry(id.clone()).or_insert(deepest + 1);
    }
    layer
}

/// The nodes in reading order: by layer (the dialed entry first), then by name.
pub fn order(script: &Script) -> Vec<String> {
    let mut nodes: Vec<(usize, bool, String)> = layers(script)
        .into_iter()
        .map(|(n, l)| (l, n != script.start, n))
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, _, n)| n).collect()
}

const W: usize = 150;
const H: usize = 40;
const GAP_X: usize = 40;
const GAP_Y: usize = 70;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG of the script: one row per layer, a box per node (end nodes show their outcome),
/// an arrow per transition labelled with what takes it (parallel transitions share one arrow).
pub fn svg(script: &Script) -> String {
    let layer = layers(script);
    let mut rows: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
    for id in order(script)
        .iter()
        .filter_map(|id| layer.get_key_value(id).map(|(k, _)| k))
    {
        rows.entry(layer[id]).or_default().push(id);
    }
    let widest = rows.values().map(Vec::len).max().unwrap_or(1);
    let width = widest * (W + GAP_X) + GAP_X;
    let height = rows.len() * (H + GAP_Y) + GAP_Y / 2;
    let mut at = BTreeMap::new();
    for (row, (_, ids)) in rows.iter().enumerate() {
        let offset = (width - ids.len() * (W + GAP_X) + GAP_X) / 2;
        for (col, id) in ids.iter().enumerate() {
            at.insert(
                (*id).clone(),
                (offset + col * (W + GAP_X), GAP_Y / 2 + row * (H + GAP_Y)),
            );
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="script graph">"#
    );
    s.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#);
    let mut labels: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (from, to, why) in edges(script) {
        labels.entry((from, to)).or_default().insert(why);
    }
    for ((from, to), why) in &labels {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from), at.get(to)) else {
            continue;
        };
        let label = esc(&why.iter().cloned().collect::<Vec<_>>().join(", "));
        if from == to {
            let _ = write!(
                s,
                r#"<path class="edge" d="M{} {} c 30 -25, 30 25, 0 12" marker-end="url(#arrow)"/><text class="edge-label" x="{}" y="{}">{label}</text>"#,
                x1 + W,
                y1 + H / 2 - 6,
                x1 + W + 28,
                y1 + H / 2
            );
            continue;
        }
        let (sx, sy, ex, ey) = if y2 > y1 {
            (x1 + W / 2, y1 + H, x2 + W / 2, y2)
        } else if y2 < y1 {
            (x1 + W / 2, y1, x2 + W / 2, y2 + H)
        } else if x2 > x1 {
            (x1 + W, y1 + H / 2, x2, y2 + H / 2)
        } else {
            (x1, y1 + H / 2, x2 + W, y2 + H / 2)
        };
        let _ = write!(
            s,
            r#"<line class="edge" x1="{sx}" y1="{sy}" x2="{ex}" y2="{ey}" marker-end="url(#arrow)"/><text class="edge-label" x="{}" y="{}">{label}</text>"#,
            (sx + ex) / 2 + 4,
            (sy + ey) / 2
        );
    }
    for (id, (x, y)) in &at {
        let node = &script.nodes[id];
        let class = if node.end.is_some() {
            "node end"
        } else if node.transfer.is_some() {
            "node transfer"
        } else {
            "node"
        };
        let _ = write!(
            s,
            r#"<g class="{class}" data-node="{}"><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6"/><text x="{}" y="{}">{}</text>"#,
            esc(id),
            x + W / 2,
            y + if node.end.is_some() { 17 } else { 25 },
            esc(id)
        );
        if let Some(outcome) = node.end {
            let _ = write!(
                s,
                r#"<text class="outcome" x="{}" y="{}">{}</text>"#,
                x + W / 2,
                y + 32,
                esc(outcome.as_str())
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// How many calls reached each node, in reading order (a call counts once per node).
pub fn funnel(order: &[String], paths: &[Vec<String>]) -> Vec<(String, usize)> {
    order
        .iter()
        .map(|node| {
            let reached = paths.iter().filter(|p| p.contains(node)).count();
            (node.clone(), reached)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solar() -> Script {
        Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap()
    }

    #[test]
    fn the_solar_script_reads_from_its_entry_nodes_to_its_ends() {
        let s = solar();
        let order = order(&s);
        assert_eq!(order.len(), s.nodes.len());
        assert_eq!(order[0], s.start);
        let layer = layers(&s);
        // Every transition of the shipped script leads somewhere drawn.
        for (from, to, _) in edges(&s) {
            assert!(layer.contains_key(&from) && layer.contains_key(&to));
        }
        // The end nodes come after the start.
        for (id, node) in &s.nodes {
            if node.end.is_some() {
                assert!(layer[id] > 0, "{id}");
            }
        }
    }

    #[test]
    fn the_drawing_has_a_box_per_node_and_an_arrow_per_transition() {
        let s = solar();
        let svg = svg(&s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), s.nodes.len());
        let pairs: BTreeSet<(String, String)> =
            edges(&s).into_iter().map(|(f, t, _)| (f, t)).collect();
        assert_eq!(svg.matches("marker-end").count(), pairs.len());
        for id in s.nodes.keys() {
            assert!(svg.contains(&format!("data-node=\"{id}\"")), "{id}");
        }
    }

    #[test]
    fn the_funnel_counts_each_call_once_per_node_it_reached() {
        let order = vec!["start".to_string(), "bill".into(), "book".into()];
        let paths = vec![
            vec!["start".to_string(), "bill".into(), "book".into()],
            vec!["start".to_string(), "bill".into(), "start".into()],
            vec!["start".to_string()],
        ];
        assert_eq!(
            funnel(&order, &paths),
            vec![("start".into(), 3), ("bill".into(), 2), ("book".into(), 1)]
        );
    }
}
