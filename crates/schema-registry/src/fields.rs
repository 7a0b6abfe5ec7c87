//! Checks of the typed fields in request bodies: config updates, data-contract
//! metadata and rule sets. Confluent's registry maps these bodies onto typed
//! classes, so a wrong type or an unknown enum value is refused with 422 and
//! unknown fields are dropped; stored verbatim instead, such a value would
//! come back in later answers that break the API's own description.

use serde_json::{Map, Value, json};
use tributary_schema::CompatibilityLevel;

use crate::error::ApiError;
use crate::format::ConfigValue;

/// Values of `RuleSet.enableAt`.
const ENABLE_AT: &[&str] = &["ALL", "CLIENT", "GATEWAY", "SERVER", "NONE"];
/// Values of `Rule.kind`.
const RULE_KINDS: &[&str] = &["TRANSFORM", "CONDITION"];
/// Values of `Rule.mode`.
const RULE_MODES: &[&str] = &["UPGRADE", "DOWNGRADE", "UPDOWN", "WRITE", "READ", "WRITEREAD"];

fn unprocessable(field: &str, what: &str) -> ApiError {
    ApiError::new(422, format!("Invalid value for '{field}': {what}"))
}

fn check_string(field: &str, v: &Value) -> Result<(), ApiError> {
    if v.is_string() { Ok(()) } else { Err(unprocessable(field, "expected a string")) }
}

fn check_bool(field: &str, v: &Value) -> Result<(), ApiError> {
    if v.is_boolean() { Ok(()) } else { Err(unprocessable(field, "expected true or false")) }
}

fn check_enum(field: &str, v: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(unprocessable(field, &format!("expected one of {}", allowed.join(", ")))),
    }
}

fn check_string_array(field: &str, v: &Value) -> Result<(), ApiError> {
    match v.as_array() {
        Some(items) if items.iter().all(Value::is_string) => Ok(()),
        _ => Err(unprocessable(field, "expected an array of strings")),
    }
}

/// A set of strings (`uniqueItems`): sorted, each once, as Confluent's sorted sets answer.
fn string_set(field: &str, v: &mut Value) -> Result<(), ApiError> {
    check_string_array(field, v)?;
    if let Value::Array(items) = v {
        let mut set: Vec<String> = items.iter().filter_map(Value::as_str).map(str::to_string).collect();
        set.sort();
        set.dedup();
        *items = set.into_iter().map(Value::String).collect();
    }
    Ok(())
}

fn object<'a>(field: &str, v: &'a mut Value) -> Result<&'a mut Map<String, Value>, ApiError> {
    v.as_object_mut().ok_or_else(|| unprocessable(field, "expected an object"))
}

/// `Metadata`: `tags` (string → set of strings), `properties` (string → string), `sensitive` (set of
/// strings). Sets come back sorted and without repeats.
pub fn metadata(field: &str, v: &mut Value) -> Result<(), ApiError> {
    for (key, value) in object(field, v)? {
        let name = format!("{field}.{key}");
        match key.as_str() {
            _ if value.is_null() => {}
            "tags" => {
                for (tag, paths) in object(&name, value)? {
                    string_set(&format!("{name}.{tag}"), paths)?;
                }
            }
            "properties" => {
                for (property, text) in object(&name, value)? {
                    check_string(&format!("{name}.{property}"), text)?;
                }
            }
            "sensitive" => string_set(&name, value)?,
            _ => {}
        }
    }
    Ok(())
}

/// `RuleSet`: three arrays of rules and `enableAt`.
pub fn rule_set(field: &str, v: &mut Value) -> Result<(), ApiError> {
    for (key, value) in object(field, v)? {
        let name = format!("{field}.{key}");
        match key.as_str() {
            _ if value.is_null() => {}
            "migrationRules" | "domainRules" | "encodingRules" => {
                let rules = value.as_array_mut().ok_or_else(|| unprocessable(&name, "expected an array of rules"))?;
                for (i, r) in rules.iter_mut().enumerate() {
                    rule(&format!("{name}[{i}]"), r)?;
                }
            }
            "enableAt" => check_enum(&name, value, ENABLE_AT)?,
            _ => {}
        }
    }
    Ok(())
}

fn rule(field: &str, v: &mut Value) -> Result<(), ApiError> {
    for (key, value) in object(field, v)? {
        let name = format!("{field}.{key}");
        match key.as_str() {
            _ if value.is_null() => {}
            "name" | "doc" | "type" | "expr" | "onSuccess" | "onFailure" => check_string(&name, value)?,
            "kind" => check_enum(&name, value, RULE_KINDS)?,
            "mode" => check_enum(&name, value, RULE_MODES)?,
            "tags" => string_set(&name, value)?,
            "disabled" => check_bool(&name, value)?,
            "params" => {
                for (param, text) in object(&name, value)? {
                    check_string(&format!("{name}.{param}"), text)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `v` with every null member of every object removed, as Confluent's
/// registry leaves nulls out of what it answers.
pub fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k, without_nulls(x))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// A config update (`PUT /config[/{subject}]`), checked field by field.
/// Returns what to merge into the stored config and what to answer.
/// Null fields are left alone and unknown fields dropped, as Confluent's do.
pub fn config_update(body: Map<String, Value>) -> Result<(ConfigValue, Map<String, Value>), ApiError> {
    let mut update = ConfigValue::new();
    let mut echo = Map::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "compatibility" | "compatibilityLevel" => {
                let text = value.as_str().unwrap_or_default();
                let level: CompatibilityLevel = text.parse().map_err(|_| {
                    ApiError::new(
                        42203,
                        format!(
                            "Invalid compatibility level. Valid values are none, backward, forward, full, \
                             backward_transitive, forward_transitive and full_transitive; got '{text}'"
                        ),
                    )
                })?;
                update.insert("compatibilityLevel".to_string(), json!(level.as_str()));
                echo.insert("compatibility".to_string(), json!(level.as_str()));
                continue;
            }
            "alias" | "aliasForDeks" | "compatibilityPolicy" | "compatibilityGroup" => check_string(&key, &value)?,
            "normalize" | "validateFields" | "validateNewSchemas" | "validateRules" => check_bool(&key, &value)?,
            "defaultMetadata" | "overrideMetadata" | "defaultRuleSet" | "overrideRuleSet" => {}
            _ => continue,
        }
        let mut value = without_nulls(value);
        match key.as_str() {
            "defaultMetadata" | "overrideMetadata" => metadata(&key, &mut value)?,
            "defaultRuleSet" | "overrideRuleSet" => rule_set(&key, &mut value)?,
            _ => {}
        }
        update.insert(key.clone(), value.clone());
        echo.insert(key, value);
    }
    Ok((update, echo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(body: Value) -> Result<(ConfigValue, Map<String, Value>), ApiError> {
        config_update(body.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn config_fields_are_typed() {
        let (stored, echo) = update(json!({
            "compatibility": "full_transitive", "normalize": true, "compatibilityGroup": "app",
            "overrideRuleSet": {"enableAt": null},
            "defaultRuleSet": {"enableAt": "ALL", "domainRules": [{"name": "r", "kind": "CONDITION", "mode": "WRITE",
                                                                    "params": {"a": "b"}, "disabled": false}]},
            "defaultMetadata": {"tags": {"T": ["b", "a", "b"]}, "properties": {"owner": "x"}, "sensitive": ["s"]},
            "somethingNew": 1, "alias": null,
        }))
        .expect("valid");
        assert_eq!(stored["compatibilityLevel"], "FULL_TRANSITIVE");
        assert_eq!(echo["compatibility"], "FULL_TRANSITIVE");
        assert!(!stored.contains_key("somethingNew") && !stored.contains_key("alias"));
        assert_eq!(stored["defaultRuleSet"]["domainRules"][0]["params"]["a"], "b");
        assert_eq!(stored["overrideRuleSet"], json!({}), "nulls are left out");
        assert_eq!(stored["defaultMetadata"]["tags"]["T"], json!(["a", "b"]), "sets are sorted, without repeats");

        for bad in [
            json!({"compatibility": "SIDEWAYS"}),
            json!({"normalize": "yes"}),
            json!({"alias": 3}),
            json!({"overrideRuleSet": {"enableAt": "AAA"}}),
            json!({"defaultRuleSet": {"migrationRules": [{"kind": "MAGIC"}]}}),
            json!({"defaultRuleSet": {"domainRules": {}}}),
            json!({"defaultMetadata": {"tags": {"T": "not-a-list"}}}),
            json!({"defaultMetadata": []}),
        ] {
            let e = update(bad.clone()).expect_err("refused");
            assert!(e.code == 422 || e.code == 42203, "{bad}: {e:?}");
        }
    }
}
