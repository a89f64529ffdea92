use super::*;

#[test]
fn escaping_keeps_the_document_well_formed() {
    let nasty = "a<b>&\"c'\u{1}\u{FFFF}";
    let doc = format!("<x a=\"{}\">{}</x>", escape(nasty), escape(nasty));
    let parsed = roxmltree::Document::parse(&doc).expect("well-formed");
    let root = parsed.root_element();
    assert_eq!(root.attribute("a"), Some("a<b>&\"c'\u{FFFD}\u{FFFD}"));
    assert_eq!(root.text(), Some("a<b>&\"c'\u{FFFD}\u{FFFD}"));
}
