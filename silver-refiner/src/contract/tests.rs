//! Contract parsing and validation: the accepted forms, and every refusal
//! naming its entity and column.

use super::*;
use crate::value::Value;

const ORDERS: &str = r#"
name = "orders"
version = 3
source = "bronze.orders"
key = ["order_id", "line"]
evolve = "add-columns"
ignore = ["__deleted"]
partition = { column = "order_date", transform = "month" }

[[column]]
name = "order_id"
type = "long"

[[column]]
name = "line"
type = "int"

[[column]]
name = "order_date"
type = "date"
formats = ["%d.%m.%Y"]

[[column]]
name = "amount"
type = "decimal(12,2)"
source = "amount_cents"
factor = "0.01"
min = "0"
max = 1000000
default = "0.00"

[[column]]
name = "currency"
type = "string"
trim = true
empty_as_null = true
case = "upper"
allowed = ["EUR", "USD"]
not_null = true

[[column]]
name = "placed_at"
type = "timestamptz"
assume_offset = "+02:00"
min = 2000-01-01T00:00:00Z
"#;

#[test]
fn parses_a_single_entity_file() {
    let c = Contract::from_toml_str(ORDERS).expect("a valid contract");
    assert_eq!((c.name(), c.version(), c.source()), ("orders", 3, "bronze.orders"));
    assert_eq!(c.key_columns().map(Column::name).collect::<Vec<_>>(), ["order_id", "line"]);
    assert_eq!(c.evolve(), Evolve { add_columns: true, widen_types: false });
    assert_eq!(c.partition(), Some(&Partition { column: "order_date".into(), transform: Transform::Month }));
    let amount = c.column("amount").expect("amount");
    assert_eq!(amount.source(), "amount_cents");
    assert_eq!(amount.ty(), ColumnType::Decimal { precision: 12, scale: 2 });
    assert_eq!(amount.default(), Some(&Value::Decimal { unscaled: 0, scale: 2 }));
    assert_eq!(amount.field_id(), 4);
    assert!(!amount.is_required());
    assert!(c.column("currency").is_some_and(Column::is_required));
    assert!(c.column("line").is_some_and(|l| l.is_key() && l.is_required()));
    assert!(c.reads("amount_cents") && !c.reads("amount"));
    assert!(c.ignores("__deleted"));
    assert_eq!(c.extra_field_id(), 7);
    assert_eq!(c.unavailable_placeholder(), DEFAULT_UNAVAILABLE_PLACEHOLDER);
}

#[test]
fn parses_entity_sections_and_directories() {
    let two = r#"
        [[entity]]
        name = "a"
        version = 1
        source = "bronze.a"
        key = "id"
        [[entity.column]]
        name = "id"
        type = "long"

        [[entity]]
        name = "b"
        version = 2
        source = "bronze.b"
        key = "code"
        [[entity.column]]
        name = "code"
        type = "string"
    "#;
    let all = Contracts::from_toml_str(two).expect("two entities");
    assert_eq!(all.iter().map(Contract::name).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(all.get("b").map(Contract::version), Some(2));
    let e = Contract::from_toml_str(two).expect_err("one expected");
    assert!(e.to_string().contains("holds 2 entities"), "{e}");

    let dir = std::env::temp_dir().join(format!("silver-contracts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("1-orders.toml"), ORDERS).expect("write");
    std::fs::write(dir.join("2-more.toml"), two).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a contract").expect("write");
    let all = Contracts::from_dir(&dir).expect("a directory of contracts");
    assert_eq!(all.len(), 3);
    std::fs::write(dir.join("3-again.toml"), ORDERS).expect("write");
    let e = Contracts::from_dir(&dir).expect_err("orders twice");
    assert_eq!(e.entity(), Some("orders"));
    assert!(e.to_string().contains("already declared in") && e.to_string().contains("1-orders.toml"), "{e}");
    let single = Contract::from_file(dir.join("1-orders.toml")).expect("one file");
    assert_eq!(single.name(), "orders");
    let missing = Contract::from_file(dir.join("absent.toml")).expect_err("no file");
    assert!(missing.to_string().contains("absent.toml"), "{missing}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A contract with one extra column `c` described by `column` (TOML lines).
fn with_column(column: &str) -> String {
    format!(
        "name = \"t\"\nversion = 1\nsource = \"bronze.t\"\nkey = \"id\"\n\n[[column]]\nname = \"id\"\ntype = \"long\"\n\n\
         [[column]]\nname = \"c\"\n{column}\n"
    )
}

fn column_error(column: &str) -> String {
    let e = Contract::from_toml_str(&with_column(column)).expect_err(column);
    assert_eq!(e.entity(), Some("t"), "{e}");
    assert_eq!(e.column(), Some("c"), "{e}");
    e.to_string()
}

#[test]
fn refuses_bad_columns_naming_entity_and_column() {
    let cases = [
        ("type = \"varchar\"", "unknown type `varchar`"),
        ("type = \"decimal(40,2)\"", "precision must be 1..=38"),
        ("type = \"long\"\nunit = \"millis\"", "`unit` applies to date, time and timestamp"),
        ("type = \"time\"\nunit = \"days\"", "time of day"),
        ("type = \"string\"\nformats = [\"%Y\"]", "`formats` apply to date"),
        ("type = \"date\"\nformats = [\"%Q\"]", "not a valid chrono format"),
        ("type = \"timestamp\"\nassume_offset = \"+02:00\"", "timestamptz columns"),
        ("type = \"timestamptz\"\nassume_offset = \"Berlin\"", "not an offset"),
        ("type = \"long\"\nencoding = \"base64\"", "does not apply to a long column"),
        ("type = \"decimal(5,2)\"\nencoding = \"hex\"", "does not apply"),
        ("type = \"long\"\ncase = \"lower\"", "`case` applies to string columns"),
        ("type = \"string\"\nfactor = 2", "`factor` applies to numeric columns"),
        ("type = \"long\"\nfactor = 0.5", "whole factor"),
        ("type = \"string\"\nmin = \"a\"", "`min` applies to numeric and temporal"),
        ("type = \"long\"\nmin = \"x\"", "`min = \"x\"` is not a long value"),
        ("type = \"decimal(5,2)\"\nmax = \"1.005\"", "`max = \"1.005\"` is not a decimal(5,2) value"),
        ("type = \"long\"\nmin = 5\nmax = 1", "`min` 5 is greater than `max` 1"),
        ("type = \"date\"\nmin = 2020-01-01\nmax = 2019-12-31", "greater than `max`"),
        ("type = \"string\"\nregex = \"([a-z\"", "`regex` does not compile"),
        ("type = \"long\"\nregex = \"^1$\"", "`regex` applies to string columns"),
        ("type = \"string\"\nallowed = []", "`allowed` is empty"),
        ("type = \"long\"\nallowed = [1, \"x\"]", "`allowed = \"x\"` is not a long value"),
        ("type = \"string\"\ncase = \"upper\"\nallowed = [\"eur\"]", "can never match"),
        ("type = \"double\"\nallowed = [1.5]", "`allowed` does not apply to double"),
        ("type = \"long\"\nmax_length = 3", "`max_length` applies to string and binary"),
        ("type = \"string\"\nmax_length = 0", "`max_length = 0`"),
        ("type = \"long\"\nmin = 0\ndefault = -1", "`default` -1 breaks a rule"),
        ("type = \"string\"\nregex = \"^[A-Z]+$\"\ndefault = \"n/a\"", "`default` \"n/a\" breaks a rule"),
        ("type = \"decimal(5,2)\"\ndefault = \"0.001\"", "`default = \"0.001\"` is not a decimal(5,2) value"),
        ("type = \"long\"\ndefault = [1]", "expected a single value"),
        ("type = \"long\"\nsource = \"\"", "`source` is empty"),
    ];
    for (column, expected) in cases {
        let e = column_error(column);
        assert!(e.contains(expected), "{column:?}: {e:?} should contain {expected:?}");
        assert!(e.starts_with("contract (string), entity `t`, column `c`: "), "{e}");
    }
}

/// An edit of a contract text.
type Edit = fn(&str) -> String;

#[test]
fn refuses_bad_entities() {
    let base = |edit: Edit| Contract::from_toml_str(&edit(&with_column("type = \"date\"")));
    let cases: [(Edit, &str); 10] = [
        (|s| s.replace("key = \"id\"", "key = \"nope\""), "key column `nope` is not a declared column"),
        (|s| s.replace("key = \"id\"", "key = []"), "`key` is empty"),
        (|s| s.replace("key = \"id\"", "key = [\"id\", \"id\"]"), "listed twice"),
        (|s| s.replace("version = 1", "version = 0"), "`version` starts at 1"),
        (|s| s.replace("source = \"bronze.t\"", "source = \"t\""), "namespace.table"),
        (|s| s.replace("name = \"t\"", "name = \"t-1\""), "entity name"),
        (
            |s| format!("partition = {{ column = \"id\", transform = \"day\" }}\n{s}"),
            "must be a date, timestamp or timestamptz",
        ),
        (
            |s| format!("partition = {{ column = \"zz\", transform = \"day\" }}\n{s}"),
            "partition column `zz` is not a declared column",
        ),
        (|s| format!("ignore = [\"c\"]\n{s}"), "`ignore` lists `c`, which a column reads"),
        (|s| s.replace("name = \"c\"", "name = \"id\""), "declared twice"),
    ];
    for (edit, expected) in cases {
        let e = base(edit).expect_err(expected).to_string();
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        assert!(e.contains("entity `t`") || e.contains("entity `t-1`"), "{e}");
    }
    let partitioned = base(|s| format!("partition = {{ column = \"c\", transform = \"day\" }}\n{s}"));
    assert!(partitioned.is_ok(), "a date column partitions: {partitioned:?}");

    let e = Contract::from_toml_str(&with_column("type = \"long\"").replace("name = \"c\"", "name = \"_extra\""))
        .expect_err("reserved");
    assert!(e.to_string().contains("reserved"), "{e}");
    let e = Contract::from_toml_str(&with_column("type = \"double\"").replace("key = \"id\"", "key = \"c\""))
        .expect_err("float key");
    assert!(e.to_string().contains("a key column cannot be double"), "{e}");
    let e =
        Contract::from_toml_str(&with_column("type = \"long\"\ndefault = 1").replace("key = \"id\"", "key = \"c\""))
            .expect_err("key default");
    assert!(e.to_string().contains("cannot have a `default`"), "{e}");
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let e = Contract::from_toml_str(&with_column("type = \"long\"\nnot_nul = true")).expect_err("typo");
    assert!(matches!(e, ContractError::Syntax { .. }), "{e:?}");
    assert_eq!(e.entity(), Some("t"));
    let text = e.to_string();
    assert!(text.contains("entity `t`") && text.contains("not_nul") && text.contains("line"), "{text}");
    let sections = "[[entity]]\nname = \"a\"\nversion = 1\nsource = \"bronze.a\"\nkey = \"id\"\n[[entity.column]]\nname = \"id\"\n\
                    type = \"long\"\n[[entity]]\nname = \"b\"\nversion = \"two\"\n";
    let e = Contracts::from_toml_str(sections).expect_err("a bad second section");
    assert_eq!(e.entity(), Some("b"), "{e}");
    let e = Contract::from_toml_str(&format!("colour = 1\n{}", with_column("type = \"long\""))).expect_err("typo");
    assert!(e.to_string().contains("colour"), "{e}");
    let e = Contract::from_toml_str("name = ").expect_err("not TOML");
    assert!(matches!(e, ContractError::Syntax { .. }), "{e:?}");
}

#[test]
fn literals_read_the_canonical_way() {
    let c = Contract::from_toml_str(&with_column(
        "type = \"timestamptz\"\nformats = [\"%d/%m/%Y\"]\nmin = \"2020-01-01T00:00:00\"\nmax = 2030-01-01T00:00:00+01:00",
    ))
    .expect("valid");
    let col = c.column("c").expect("c");
    assert_eq!(col.checks.min, Some(Value::TimestampTz(1_577_836_800_000_000)), "no offset: UTC");
    assert_eq!(col.checks.max, Some(Value::TimestampTz(1_893_452_400_000_000)));
    let c = Contract::from_toml_str(&with_column("type = \"binary\"\ndefault = \"aGk=\"")).expect("valid");
    assert_eq!(c.column("c").and_then(Column::default), Some(&Value::Binary(b"hi".to_vec())));
    let c =
        Contract::from_toml_str(&with_column("type = \"decimal(6,3)\"\nfactor = 0.001\nmin = -1.5")).expect("valid");
    let col = c.column("c").expect("c");
    assert_eq!(col.factor, Some(column::Factor::Decimal { unscaled: 1, scale: 3 }));
    assert_eq!(col.checks.min, Some(Value::Decimal { unscaled: -1500, scale: 3 }));
}
