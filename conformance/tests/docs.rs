//! docs/rules.md is generated from the rule registry; this fails when the two drift apart.

use smmu_conform::report::rules::{markdown, REGENERATE};

#[test]
fn rules_md_matches_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = markdown();
    assert!(
        committed == generated,
        "docs/rules.md is out of date with the rule registry. Regenerate it from the workspace \
         root with:\n\n    {REGENERATE}\n\nand commit the result."
    );
}
