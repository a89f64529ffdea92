use super::*;

#[test]
fn diffs_show_only_changed_lines_with_context() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
    let new = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nL";
    let d = unified_diff("x.yaml", old, new);
    assert_eq!(
        d,
        "--- x.yaml\n+++ x.yaml\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,4 +9,4 @@\n i\n j\n k\n-l\n+L\n\\ No newline at end of file\n"
    );
    assert_eq!(unified_diff("x", old, old), "");
    let near = unified_diff("x", "1\n2\n3\n4\n5\n", "1\nX\n3\nY\n5\n");
    assert_eq!(
        near, "--- x\n+++ x\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n-4\n+Y\n 5\n",
        "close changes share a hunk"
    );
}
