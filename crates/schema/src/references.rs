//! Resolution of a schema's references through the caller's [`ReferenceResolver`].
//!
//! References are walked depth first and returned dependencies-first (a referenced schema comes
//! before the schemas that reference it), which is the order the Avro parser needs to define
//! named types before their use. Each distinct reference name is returned once. A reference that
//! reaches back to a subject/version already on the current path is a cycle.

use std::collections::HashSet;

use crate::{ParseOptions, ReferenceResolver, SchemaError, SchemaReference, SchemaSource};

/// One resolved reference: the name the referencing schema uses and the referenced source.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub name: String,
    pub reference: SchemaReference,
    pub source: SchemaSource,
}

pub(crate) fn resolve_all(
    source: &SchemaSource,
    resolver: &dyn ReferenceResolver,
    options: &ParseOptions,
) -> Result<Vec<Resolved>, SchemaError> {
    let mut walk = Walk {
        resolver,
        options,
        out: Vec::new(),
        names: HashSet::new(),
        visited: HashSet::new(),
        path: Vec::new(),
        fetched: 0,
    };
    walk.visit(&source.references, 1)?;
    Ok(walk.out)
}

struct Walk<'a> {
    resolver: &'a dyn ReferenceResolver,
    options: &'a ParseOptions,
    out: Vec<Resolved>,
    names: HashSet<String>,
    visited: HashSet<(String, i32)>,
    path: Vec<(String, i32)>,
    fetched: usize,
}

fn describe(r: &SchemaReference) -> String {
    format!("'{}' (subject '{}', version {})", r.name, r.subject, r.version)
}

impl Walk<'_> {
    fn visit(&mut self, references: &[SchemaReference], depth: usize) -> Result<(), SchemaError> {
        for reference in references {
            let key = (reference.subject.clone(), reference.version);
            if self.path.contains(&key) {
                return Err(SchemaError::CyclicReference(describe(reference)));
            }
            if self.visited.contains(&key) {
                if self.names.insert(reference.name.clone())
                    && let Some(done) = self
                        .out
                        .iter()
                        .find(|r| (r.reference.subject.as_str(), r.reference.version) == (key.0.as_str(), key.1))
                {
                    let source = done.source.clone();
                    self.out.push(Resolved { name: reference.name.clone(), reference: reference.clone(), source });
                }
                continue;
            }
            if depth > self.options.max_depth {
                return Err(SchemaError::TooDeep(self.options.max_depth));
            }
            self.fetched += 1;
            if self.fetched > self.options.max_references {
                return Err(SchemaError::Invalid(format!(
                    "more than {} references (counting transitive ones)",
                    self.options.max_references
                )));
            }
            let source =
                self.resolver.resolve(reference).ok_or_else(|| SchemaError::UnknownReference(describe(reference)))?;
            if source.schema.len() > self.options.max_schema_bytes {
                return Err(SchemaError::TooLarge(self.options.max_schema_bytes));
            }
            self.path.push(key.clone());
            self.visit(&source.references, depth + 1)?;
            self.path.pop();
            self.visited.insert(key);
            if self.names.insert(reference.name.clone()) {
                self.out.push(Resolved { name: reference.name.clone(), reference: reference.clone(), source });
            }
        }
        Ok(())
    }
}
