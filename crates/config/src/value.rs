//! Config value types and validation, with Kafka's `ConfigDef` type names and
//! the DescribeConfigs `config_type` codes.

/// A config's type (DescribeConfigs `config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true`/`false`.
    Boolean,
    /// Free text.
    String,
    /// 32-bit integer.
    Int,
    /// 16-bit integer.
    Short,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
    /// Class name.
    Class,
    /// Secret.
    Password,
}

impl ConfigType {
    /// The DescribeConfigs v3+ `config_type` code.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// What values a config accepts beyond its type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// Any value of the type.
    Any,
    /// Integer within `min..=max`.
    Range(i64, i64),
    /// Integer within `min..=max`, or exactly `special`.
    RangeOr(i64, i64, i64),
    /// Floating point within `min..=max`.
    DoubleRange(f64, f64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A list whose items are each one of these strings. An empty list is
    /// valid, as with Kafka's `ValidList.in` (an empty `cleanup.policy`
    /// means neither delete nor compact).
    ListOf(&'static [&'static str]),
    /// Kafka's `ThrottledReplicaListValidator`: `*` alone, or
    /// `partition:broker` pairs (an empty list is valid).
    ThrottledReplicas,
}

/// Parses a value of `ty` and checks it against `validator`. The error text
/// is what the client sees with INVALID_CONFIG.
pub fn validate(name: &str, ty: ConfigType, validator: Validator, value: &str) -> Result<(), String> {
    let value = value.trim();
    let integer = |bits: u32| -> Result<i64, String> {
        let v: i64 = value.parse().map_err(|_| {
            format!("Invalid value {value} for configuration {name}: Not a number of type {}", type_name(ty))
        })?;
        let (min, max) = match bits {
            16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        if v < min || v > max {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type {}",
                type_name(ty)
            ));
        }
        Ok(v)
    };
    match ty {
        ConfigType::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Expected value to be either true or false"
                ));
            }
        }
        ConfigType::Int => check_range(name, value, integer(32)?, validator)?,
        ConfigType::Short => check_range(name, value, integer(16)?, validator)?,
        ConfigType::Long => check_range(name, value, integer(64)?, validator)?,
        ConfigType::Double => {
            let v: f64 = value
                .parse()
                .map_err(|_| format!("Invalid value {value} for configuration {name}: Not a number of type DOUBLE"))?;
            if let Validator::DoubleRange(min, max) = validator
                && !(min..=max).contains(&v)
            {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Value must be between {min} and {max}"
                ));
            }
        }
        ConfigType::String | ConfigType::Class | ConfigType::Password => {
            if let Validator::OneOf(allowed) = validator
                && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
            {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: String must be one of: {}",
                    allowed.join(", ")
                ));
            }
        }
        ConfigType::List => match validator {
            Validator::ListOf(allowed) => {
                for item in split_list(value) {
                    if !allowed.contains(&item) {
                        return Err(format!(
                            "Invalid value {item} for configuration {name}: String must be one of: {}",
                            allowed.join(", ")
                        ));
                    }
                }
            }
            Validator::ThrottledReplicas => {
                let items: Vec<&str> = value.split(',').map(str::trim).collect();
                let pair = |item: &str| match item.split_once(':') {
                    Some((p, b)) => is_digits(p) && is_digits(b),
                    None => item.is_empty(),
                };
                if !(items.iter().all(|i| pair(i)) || items.concat() == "*") {
                    return Err(format!(
                        "Invalid value {value} for configuration {name}: {name} must be the literal '*' or a list of \
                         replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                    ));
                }
            }
            _ => {}
        },
    }
    Ok(())
}

fn check_range(name: &str, text: &str, v: i64, validator: Validator) -> Result<(), String> {
    match validator {
        Validator::Range(min, max) if v < min || v > max => Err(range_message(name, text, min, max)),
        Validator::RangeOr(min, max, special) if v != special && (v < min || v > max) => {
            Err(range_message(name, text, min, max))
        }
        _ => Ok(()),
    }
}

fn range_message(name: &str, text: &str, min: i64, max: i64) -> String {
    if max == i64::MAX || max == i64::from(i32::MAX) {
        format!("Invalid value {text} for configuration {name}: Value must be at least {min}")
    } else {
        format!("Invalid value {text} for configuration {name}: Value must be between {min} and {max}")
    }
}

fn type_name(ty: ConfigType) -> &'static str {
    match ty {
        ConfigType::Boolean => "BOOLEAN",
        ConfigType::String => "STRING",
        ConfigType::Int => "INT",
        ConfigType::Short => "SHORT",
        ConfigType::Long => "LONG",
        ConfigType::Double => "DOUBLE",
        ConfigType::List => "LIST",
        ConfigType::Class => "CLASS",
        ConfigType::Password => "PASSWORD",
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A value as Kafka prints it after parsing it as `ty` (`ConfigDef.parseType`
/// then `convertToString`), which is what DescribeConfigs returns as a
/// config's value: text trimmed, booleans in lower case, numbers without
/// padding or sign noise, doubles in Java's `Double.toString` form, lists
/// joined by bare commas. A value that does not parse is returned as given.
pub fn canonical(ty: ConfigType, raw: &str) -> String {
    let trimmed = raw.trim();
    match ty {
        ConfigType::Boolean if trimmed.eq_ignore_ascii_case("true") => "true".to_string(),
        ConfigType::Boolean if trimmed.eq_ignore_ascii_case("false") => "false".to_string(),
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            trimmed.parse::<i64>().map_or_else(|_| raw.to_string(), |n| n.to_string())
        }
        ConfigType::Double => trimmed.parse::<f64>().map_or_else(|_| raw.to_string(), java_double),
        ConfigType::List if trimmed.is_empty() => String::new(),
        ConfigType::List => trimmed.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        ConfigType::String | ConfigType::Class | ConfigType::Password => trimmed.to_string(),
        ConfigType::Boolean => raw.to_string(),
    }
}

/// Java's `Double.toString`: plain notation with at least one fractional
/// digit for magnitudes in [10^-3, 10^7), otherwise `d.dddE±n`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let magnitude = v.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let text = format!("{v}");
        if text.contains('.') { text } else { format!("{text}.0") }
    } else {
        let text = format!("{v:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exponent}")
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_values_are_printed_as_kafka_prints_them() {
        assert_eq!(canonical(ConfigType::List, " compact , delete "), "compact,delete");
        assert_eq!(canonical(ConfigType::List, "  "), "");
        assert_eq!(canonical(ConfigType::Boolean, "TRUE"), "true");
        assert_eq!(canonical(ConfigType::Long, " 0042"), "42");
        assert_eq!(canonical(ConfigType::Long, "+7"), "7");
        assert_eq!(canonical(ConfigType::String, " producer "), "producer");
        assert_eq!(canonical(ConfigType::Double, "0.5"), "0.5");
        assert_eq!(canonical(ConfigType::Double, "1"), "1.0");
        assert_eq!(canonical(ConfigType::Double, "5.24288E7"), "5.24288E7");
        assert_eq!(canonical(ConfigType::Double, "52428800"), "5.24288E7");
        assert_eq!(canonical(ConfigType::Double, "1.7976931348623157E308"), "1.7976931348623157E308");
        assert_eq!(canonical(ConfigType::Double, "0.0001"), "1.0E-4");
        assert_eq!(canonical(ConfigType::Double, "1234567.5"), "1234567.5");
        assert_eq!(canonical(ConfigType::Int, "many"), "many");
    }

    #[test]
    fn types_and_ranges() {
        assert!(validate("x", ConfigType::Int, Validator::Range(0, 10), "5").is_ok());
        assert!(validate("x", ConfigType::Int, Validator::Range(0, 10), "11").is_err());
        assert!(validate("x", ConfigType::Int, Validator::Any, "4294967296").is_err());
        assert!(validate("x", ConfigType::Long, Validator::Any, "4294967296").is_ok());
        assert!(validate("x", ConfigType::Long, Validator::RangeOr(1, 9, -1), "-1").is_ok());
        assert!(validate("x", ConfigType::Boolean, Validator::Any, "yes").is_err());
        assert!(validate("x", ConfigType::Double, Validator::DoubleRange(0.0, 1.0), "0.5").is_ok());
        assert!(validate("x", ConfigType::Double, Validator::DoubleRange(0.0, 1.0), "1.5").is_err());
    }

    #[test]
    fn enumerations_and_lists() {
        let allowed = &["delete", "compact"];
        assert!(validate("cleanup.policy", ConfigType::List, Validator::ListOf(allowed), "compact, delete").is_ok());
        assert!(validate("cleanup.policy", ConfigType::List, Validator::ListOf(allowed), "shred").is_err());
        // Kafka's ValidList.in accepts the empty list: neither delete nor compact
        assert!(validate("cleanup.policy", ConfigType::List, Validator::ListOf(allowed), "").is_ok());
        assert!(validate("cleanup.policy", ConfigType::List, Validator::ListOf(allowed), " ").is_ok());
        let throttled =
            |v| validate("leader.replication.throttled.replicas", ConfigType::List, Validator::ThrottledReplicas, v);
        for ok in ["", "*", "0:1", "0:1, 1:1", " * "] {
            assert!(throttled(ok).is_ok(), "{ok:?}");
        }
        for bad in ["x", "0", "0:a", "*,0:1", "-1:1"] {
            assert!(throttled(bad).is_err(), "{bad:?}");
        }
        assert!(
            validate("t", ConfigType::String, Validator::OneOf(&["CreateTime", "LogAppendTime"]), "LogAppendTime")
                .is_ok()
        );
        assert!(validate("t", ConfigType::String, Validator::OneOf(&["CreateTime"]), "Never").is_err());
    }
}
