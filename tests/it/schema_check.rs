//! The committed JSON Schema of the result file and a small validator for it (the subset of
//! JSON Schema the schema uses: $ref, type, enum, minimum, required, properties,
//! additionalProperties, items). Shared by the `it` and `truth` binaries.

use serde_json::Value;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/result.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("schema uses unsupported type {other}"),
    }
}

const KNOWN: [&str; 12] = [
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "title",
    "description",
    "type",
    "enum",
    "minimum",
    "required",
    "properties",
    "additionalProperties",
];

fn validate(root: &Value, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    for k in s.as_object().expect("schema object").keys() {
        assert!(
            KNOWN.contains(&k.as_str()) || k == "items",
            "unsupported keyword {k}"
        );
    }
    if let Some(r) = s["$ref"].as_str() {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return validate(root, &root["$defs"][name], v, path, errs);
    }
    match &s["type"] {
        Value::String(t) if !type_ok(t, v) => errs.push(format!("{path}: not {t}: {v}")),
        Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)) => {
            errs.push(format!("{path}: not any of {ts:?}: {v}"))
        }
        _ => {}
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        errs.push(format!("{path}: {v} not in {e:?}"));
    }
    if let (Some(min), Some(x)) = (s["minimum"].as_f64(), v.as_f64())
        && x < min
    {
        errs.push(format!("{path}: {x} < minimum {min}"));
    }
    if let Some(obj) = v.as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{path}: missing required {r}"));
            }
        }
        let props = s["properties"].as_object();
        for (k, val) in obj {
            let p = format!("{path}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, val, &p, errs),
                None => match &s["additionalProperties"] {
                    Value::Bool(false) => errs.push(format!("{p}: not allowed")),
                    a @ Value::Object(_) => validate(root, a, val, &p, errs),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{path}/{i}"), errs);
        }
    }
}

pub(crate) fn errors(v: &Value) -> Vec<String> {
    let s = schema();
    let mut errs = Vec::new();
    validate(&s, &s, v, "", &mut errs);
    errs
}
