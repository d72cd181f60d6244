//! Circles in a directed graph of sibling modules.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The strongly connected groups of more than one node, each sorted, in
/// order of their first node.
pub fn circles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for m in &next[n] {
                if seen.insert(*m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|n| (*n, reach(n))).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for n in next.keys() {
        if placed.contains(n) || !reaches[n].contains(n) {
            continue;
        }
        let group: Vec<String> = reaches[n]
            .iter()
            .filter(|m| reaches[*m].contains(n))
            .map(|m| m.to_string())
            .collect();
        placed.extend(
            reaches[n]
                .iter()
                .filter(|m| reaches[*m].contains(n))
                .copied(),
        );
        out.push(group);
    }
    out
}

/// A shortest circle through `group[0]` inside `group`, as the nodes in
/// order, ending where it starts.
pub fn shortest_circle(group: &[String], edges: &BTreeSet<(String, String)>) -> Vec<String> {
    let start = &group[0];
    let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
    let mut todo = VecDeque::from([start]);
    while let Some(n) = todo.pop_front() {
        for (a, b) in edges {
            if a != n || !group.contains(b) {
                continue;
            }
            if b == start {
                let mut path = vec![start.clone()];
                let mut at = n;
                while at != start {
                    path.push(at.clone());
                    at = came_from[at];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if !came_from.contains_key(b) && b != start {
                came_from.insert(b, n);
                todo.push_back(b);
            }
        }
    }
    vec![start.clone()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn no_circle_in_a_chain_or_a_diamond() {
        assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")])).is_empty());
    }

    #[test]
    fn two_and_three_node_circles_are_found_apart() {
        let g = graph(&[
            ("a", "b"),
            ("b", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "c"),
            ("e", "f"),
            ("b", "c"),
        ]);
        assert_eq!(circles(&g), [vec!["a", "b"], vec!["c", "d", "e"]]);
        assert_eq!(
            shortest_circle(&["c".into(), "d".into(), "e".into()], &g),
            ["c", "d", "e", "c"]
        );
    }

    #[test]
    fn the_shortest_circle_is_named() {
        // a → b → c → a and a → c → a: the second is named.
        let g = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("a", "c")]);
        let group = &circles(&g)[0];
        assert_eq!(shortest_circle(group, &g), ["a", "c", "a"]);
    }
}
