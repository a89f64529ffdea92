//! Inputs of `supportgate check`: paths (files, directories walked recursively, or `-`), decoded
//! as kubectl decodes them ([`crate::cli::yaml11`]), with `kind: List` expanded.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::cli::yaml11::{self, Coercion};
use crate::engine::Violation;

/// The extensions a directory walk reads (kubectl's `-R -f DIR` reads the same three).
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Refuse inputs larger than this: a manifest set is kilobytes; anything far bigger is a mistake
/// (a binary, a log) and would otherwise be read whole into memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: larger than {MAX_INPUT_BYTES} bytes; refusing to read it")]
    TooLarge { source_name: String },
    #[error("{source_name}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Parse {
        source_name: String,
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error(
        "{source_name} document {document}: not a Kubernetes object (a mapping with apiVersion and kind)"
    )]
    NotAnObject {
        source_name: String,
        document: usize,
    },
}

/// One object read from an input, with where it came from.
#[derive(Debug, Clone)]
pub struct SourcedObject {
    pub source: String,
    /// 1-based index of the YAML document in its file.
    pub document: usize,
    /// The index in the document's `items` when the document is a `kind: List`.
    pub item: Option<usize>,
    pub object: Value,
}

/// Reads every object from `text`: multi-document YAML (decoded as kubectl decodes it) or JSON,
/// with `kind: List` expanded. See [`parse`].
pub fn parse_objects(source_name: &str, text: &str) -> (Vec<SourcedObject>, Vec<InputError>) {
    let (loaded, errors) = parse(source_name, text);
    (loaded.into_iter().map(|l| l.object).collect(), errors)
}

/// Reads a path, or standard input for `-`.
pub fn read_input(path: &str) -> Result<String, InputError> {
    let read_err = |error| InputError::Read {
        source_name: path.to_string(),
        error,
    };
    let mut buf = String::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut buf)
            .map_err(read_err)?;
    } else {
        let file = std::fs::File::open(Path::new(path)).map_err(read_err)?;
        file.take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut buf)
            .map_err(read_err)?;
    }
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            source_name: path.to_string(),
        });
    }
    Ok(buf)
}

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
#[path = "input_tests.rs"]
mod tests;
