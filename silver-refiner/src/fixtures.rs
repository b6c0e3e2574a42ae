//! The shared Debezium fixtures (`../shared/fixtures/debezium`, third-party
//! data, never copied into this repository), for tests.

use std::path::PathBuf;

use serde_json::Value as Json;

/// The fixture directory: `$LAKEHOUSE_FIXTURES`, else
/// `<workspace>/../shared/fixtures/debezium`. Absent: fails under `CI=true`,
/// else prints a loud notice and returns `None` (the caller skips).
pub(crate) fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LAKEHOUSE_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/debezium")),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the Debezium fixtures are absent at {}: set LAKEHOUSE_FIXTURES or check out ../shared",
        dir.display()
    );
    eprintln!(
        "\n\n!!! Debezium fixtures absent at {}: this fixture test is SKIPPED (set LAKEHOUSE_FIXTURES) !!!\n\n",
        dir.display()
    );
    None
}

/// Every line of one fixture file as JSON (`{"topic", "key", "value"}`); `None`
/// when the fixture directory is absent. A missing file in a present directory fails.
pub(crate) fn lines(file: &str) -> Option<Vec<Json>> {
    let path = dir()?.join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {} is unreadable: {e}", path.display()));
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{} is not JSON: {e}", path.display(), i + 1))
            })
            .collect(),
    )
}
