//! Inputs of `supportgate check`: paths (files, directories walked recursively, or `-`), decoded
//! as kubectl decodes them ([`crate::cli::yaml11`]), with `kind: List` expanded.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::check::{InputError, SourcedObject, read_input};
use crate::cli::yaml11::{self, Coercion};
use crate::engine::Violation;

/// The extensions a directory walk reads (kubectl's `-R -f DIR` reads the same three).
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// An object, and the unquoted scalars that YAML 1.1 turned into booleans or numbers in it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub object: SourcedObject,
    pub coercions: Vec<Coercion>,
}

/// The files behind the given paths: a file or `-` as given, a directory as every `*.yaml`,
/// `*.yml` and `*.json` below it, ordered by path. Hidden entries (`.git`, `.github`) below a
/// directory are not read; symbolic links to directories are not followed (no cycles).
pub fn expand_paths(paths: &[String]) -> (Vec<String>, Vec<InputError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if p == "-" || !path.is_dir() {
            files.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        if let Err(error) = walk(path, &mut found) {
            errors.push(InputError::Read {
                source_name: p.clone(),
                error,
            });
            continue;
        }
        if found.is_empty() {
            errors.push(InputError::Read {
                source_name: p.clone(),
                error: std::io::Error::other("the directory holds no *.yaml, *.yml or *.json file"),
            });
        }
        found.sort();
        files.extend(found.into_iter().map(|f| f.to_string_lossy().into_owned()));
    }
    (files, errors)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
            && path.is_file()
        {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads and decodes every object behind `paths`; problems come back beside the objects.
pub fn load(paths: &[String]) -> (Vec<Loaded>, Vec<InputError>) {
    let (files, mut errors) = expand_paths(paths);
    let mut objects = Vec::new();
    for file in &files {
        match read_input(file) {
            Ok(text) => {
                let (o, e) = parse(file, &text);
                objects.extend(o);
                errors.extend(e);
            }
            Err(e) => errors.push(e),
        }
    }
    (objects, errors)
}

/// Decodes one input: a JSON stream when it starts with `{` or `[`, YAML otherwise.
pub fn parse(source_name: &str, text: &str) -> (Vec<Loaded>, Vec<InputError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (i, doc) in stream.enumerate() {
            match doc {
                Ok(v) => push(
                    (source_name, i + 1, None),
                    v,
                    Vec::new(),
                    &mut objects,
                    &mut errors,
                ),
                Err(e) => {
                    errors.push(InputError::Parse {
                        source_name: source_name.to_string(),
                        location: Some((e.line(), e.column())),
                        message: e.to_string(),
                    });
                    break;
                }
            }
        }
        return (objects, errors);
    }
    let (docs, decode_errors) = yaml11::decode(text);
    for d in docs {
        push(
            (source_name, d.index, None),
            d.value,
            d.coercions,
            &mut objects,
            &mut errors,
        );
    }
    errors.extend(decode_errors.into_iter().map(|e| InputError::Parse {
        source_name: source_name.to_string(),
        location: Some((e.line, e.column)),
        message: format!("document {}: {}", e.document, e.message),
    }));
    (objects, errors)
}

/// A file, a 1-based document, and the `kind: List` item inside it.
type At<'s> = (&'s str, usize, Option<usize>);

fn push(
    (source, document, item): At,
    v: Value,
    coercions: Vec<Coercion>,
    objects: &mut Vec<Loaded>,
    errors: &mut Vec<InputError>,
) {
    if v.is_null() {
        return; // an empty document, e.g. a trailing `---`
    }
    let is_object = v.get("apiVersion").is_some_and(Value::is_string)
        && v.get("kind").is_some_and(Value::is_string);
    if !is_object {
        errors.push(InputError::NotAnObject {
            source_name: source.to_string(),
            document,
        });
        return;
    }
    if v.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(items) = v.get("items").and_then(Value::as_array)
    {
        for (i, entry) in items.iter().enumerate() {
            let prefix = format!("items[{i}]");
            let inner = coercions
                .iter()
                .filter_map(|c| {
                    let rest = c.field.strip_prefix(&prefix)?;
                    let field = rest.strip_prefix('.').unwrap_or(rest);
                    (rest.is_empty() || rest.starts_with(['.', '['])).then(|| Coercion {
                        field: field.to_string(),
                        ..c.clone()
                    })
                })
                .collect();
            push(
                (source, document, Some(i)),
                entry.clone(),
                inner,
                objects,
                errors,
            );
        }
        return;
    }
    objects.push(Loaded {
        object: SourcedObject {
            source: source.to_string(),
            document,
            item,
            object: v,
        },
        coercions,
    });
}

/// Says, on each violation at a field whose unquoted scalar YAML turned into something else,
/// what was written and what kubectl sends, so the fix (quote it) is obvious.
pub fn annotate(coercions: &[Coercion], violations: &mut [Violation]) {
    for v in violations {
        let Some(c) = v
            .field
            .as_deref()
            .and_then(|f| coercions.iter().find(|c| c.field == f))
        else {
            continue;
        };
        v.message.push_str(&format!(
            " (written unquoted as {text} in YAML, which kubectl sends as {value}; write \"{text}\" to send the text)",
            text = c.text,
            value = c.value,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_items_get_their_own_coercions() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: A, x: yes}\n- {apiVersion: v1, kind: B, z: [1.20]}\n";
        let (objs, errs) = parse("l.yaml", text);
        assert!(errs.is_empty(), "{errs:?}");
        let got: Vec<_> = objs
            .iter()
            .map(|l| {
                let c: Vec<_> = l.coercions.iter().map(|c| c.field.as_str()).collect();
                (l.object.object["kind"].clone(), c.join(","))
            })
            .collect();
        assert_eq!(got, [(json!("A"), "x".into()), (json!("B"), "z[0]".into())]);
    }

    #[test]
    fn json_streams_are_read_whole() {
        let (objs, errs) = parse(
            "s.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"A\"}\n{\"apiVersion\":\"v1\",\"kind\":\"B\",\"x\":\"yes\"}",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].object.document, 2);
        assert_eq!(objs[1].object.object["x"], json!("yes"), "JSON is not YAML");
    }
}
