//! The commerce model and its event stream (no I/O here).

use serde_json::{Value, json};

/// Table names, in topic order.
pub const TABLES: [&str; 4] = ["customers", "products", "orders", "order_items"];

/// SplitMix64: tiny, fast, and stable across versions (unlike `rand`'s
/// generators), which keeps a seed's output identical forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    Tombstone,
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Event {
    pub table: usize,
    pub op: Op,
    pub key: Value,
    /// `None` for a tombstone.
    pub value: Option<Value>,
}

const FIRST: &[&str] = &["Anne", "Sally", "George", "Edward", "Maria", "Wei", "Aisha", "Jonas", "Priya", "Lucas"];
const LAST: &[&str] = &["Kretchmar", "Thomas", "Bailey", "Walker", "Garcia", "Chen", "Khan", "Berg", "Patel", "Silva"];
const PRODUCTS: &[&str] =
    &["scooter", "car battery", "hammer", "rocks", "jacket", "spare tire", "drill bits", "gloves"];
const STATUS: &[&str] = &["pending", "paid", "shipped", "delivered", "cancelled"];

/// Generates the event stream; state is the live rows of every table.
pub struct Generator {
    rng: Rng,
    live: [Vec<(i64, Value)>; 4],
    next_id: [i64; 4],
    /// Logical clock (ms) for `ts_ms` fields: deterministic for a seed.
    clock_ms: i64,
    tx: i64,
    lsn: i64,
    pending_tombstone: Option<(usize, Value)>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            live: Default::default(),
            next_id: [1001, 101, 10001, 100001],
            clock_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            tx: 500,
            lsn: 24_023_128,
            pending_tombstone: None,
        }
    }

    /// Live rows per table (what a correct Silver would hold).
    pub fn live_counts(&self) -> [usize; 4] {
        [self.live[0].len(), self.live[1].len(), self.live[2].len(), self.live[3].len()]
    }

    fn row(&mut self, table: usize, id: i64) -> Value {
        let r = &mut self.rng;
        match table {
            0 => {
                let (f, l) = (r.pick(FIRST), r.pick(LAST));
                json!({"id": id, "first_name": f, "last_name": l,
                       "email": format!("{}.{}{}@example.com", f.to_lowercase(), l.to_lowercase(), id)})
            }
            1 => json!({"id": id, "name": r.pick(PRODUCTS), "description": format!("item {id}"),
                        "price": (r.below(100_000) as f64) / 100.0}),
            2 => {
                let customer = 1001 + r.below((self.next_id[0] - 1001).max(1) as u64) as i64;
                json!({"id": id, "customer_id": customer, "status": r.pick(STATUS),
                       "order_date": 20_454 + r.below(365) as i64, "total": (r.below(1_000_000) as f64) / 100.0})
            }
            _ => {
                let order = 10001 + r.below((self.next_id[2] - 10001).max(1) as u64) as i64;
                let product = 101 + r.below((self.next_id[1] - 101).max(1) as u64) as i64;
                json!({"id": id, "order_id": order, "product_id": product,
                       "quantity": 1 + r.below(9) as i64, "unit_price": (r.below(50_000) as f64) / 100.0})
            }
        }
    }

    /// The next message of the stream.
    pub fn next_event(&mut self) -> Event {
        if let Some((table, key)) = self.pending_tombstone.take() {
            return Event { table, op: Op::Tombstone, key, value: None };
        }
        self.clock_ms += 1 + self.rng.below(20) as i64;
        self.tx += 1;
        self.lsn += 8 + self.rng.below(4096) as i64;
        let table = match self.rng.below(10) {
            0 => 0,
            1 => 1,
            2..=5 => 2,
            _ => 3,
        };
        let roll = self.rng.below(100);
        let live = self.live[table].len();
        let op = if live < 10 || roll < 50 {
            Op::Create
        } else if roll < 88 {
            Op::Update
        } else {
            Op::Delete
        };
        let (before, after, id) = match op {
            Op::Create => {
                let id = self.next_id[table];
                self.next_id[table] += 1;
                let row = self.row(table, id);
                self.live[table].push((id, row.clone()));
                (Value::Null, row, id)
            }
            Op::Update => {
                let i = self.rng.below(live as u64) as usize;
                let id = self.live[table][i].0;
                let new = self.row(table, id);
                let old = std::mem::replace(&mut self.live[table][i].1, new.clone());
                (old, new, id)
            }
            Op::Delete | Op::Tombstone => {
                let i = self.rng.below(live as u64) as usize;
                let (id, old) = self.live[table].swap_remove(i);
                (old, Value::Null, id)
            }
        };
        let key = json!({"id": id});
        if op == Op::Delete {
            self.pending_tombstone = Some((table, key.clone()));
        }
        let op_code = match op {
            Op::Create => "c",
            Op::Update => "u",
            _ => "d",
        };
        let value = json!({
            "before": before,
            "after": after,
            "source": {
                "version": "2.7.3.Final", "connector": "postgresql", "name": "commerce",
                "ts_ms": self.clock_ms - 3, "snapshot": "false", "db": "commerce", "sequence": null,
                "schema": "public", "table": TABLES[table], "txId": self.tx, "lsn": self.lsn, "xmin": null
            },
            "op": op_code,
            "ts_ms": self.clock_ms,
            "transaction": null
        });
        Event { table, op, key, value: Some(value) }
    }
}

fn field(name: &str, ty: &str, optional: bool) -> Value {
    json!({"type": ty, "optional": optional, "field": name})
}

/// Kafka Connect schema of a table's row struct.
fn row_schema(table: usize, name: &str) -> Value {
    let fields = match table {
        0 => vec![
            field("id", "int64", false),
            field("first_name", "string", false),
            field("last_name", "string", false),
            field("email", "string", false),
        ],
        1 => vec![
            field("id", "int64", false),
            field("name", "string", false),
            field("description", "string", true),
            field("price", "double", true),
        ],
        2 => vec![
            field("id", "int64", false),
            field("customer_id", "int64", false),
            field("status", "string", false),
            json!({"type": "int32", "optional": false, "name": "io.debezium.time.Date", "version": 1, "field": "order_date"}),
            field("total", "double", false),
        ],
        _ => vec![
            field("id", "int64", false),
            field("order_id", "int64", false),
            field("product_id", "int64", false),
            field("quantity", "int64", false),
            field("unit_price", "double", false),
        ],
    };
    json!({"type": "struct", "fields": fields, "optional": true, "name": format!("commerce.public.{}.Value", TABLES[table]), "field": name})
}

/// Wraps a value (or key) in the JSON converter's `{"schema","payload"}` form.
pub fn with_schema(table: usize, payload: Value, is_key: bool) -> Value {
    let schema = if is_key {
        json!({"type": "struct", "fields": [field("id", "int64", false)], "optional": false,
               "name": format!("commerce.public.{}.Key", TABLES[table])})
    } else {
        json!({
            "type": "struct", "optional": false,
            "name": format!("commerce.public.{}.Envelope", TABLES[table]), "version": 2,
            "fields": [
                row_schema(table, "before"),
                row_schema(table, "after"),
                {"type": "struct", "optional": false, "name": "io.debezium.connector.postgresql.Source", "field": "source", "fields": [
                    field("version", "string", false), field("connector", "string", false), field("name", "string", false),
                    field("ts_ms", "int64", false), field("snapshot", "string", true), field("db", "string", false),
                    field("sequence", "string", true), field("schema", "string", false), field("table", "string", false),
                    field("txId", "int64", true), field("lsn", "int64", true), field("xmin", "int64", true)]},
                field("op", "string", false),
                field("ts_ms", "int64", true),
                {"type": "struct", "optional": true, "name": "event.block", "version": 1, "field": "transaction", "fields": [
                    field("id", "string", false), field("total_order", "int64", false), field("data_collection_order", "int64", false)]}
            ]
        })
    };
    json!({"schema": schema, "payload": payload})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Generator::new(7);
        let mut b = Generator::new(7);
        for _ in 0..1000 {
            let (x, y) = (a.next_event(), b.next_event());
            assert_eq!(x.key, y.key);
            assert_eq!(x.value, y.value);
        }
        let mut c = Generator::new(8);
        let differs = (0..100).any(|_| a.next_event().value != c.next_event().value);
        assert!(differs);
    }

    #[test]
    fn deletes_are_followed_by_tombstones_and_updates_carry_before() {
        let mut g = Generator::new(1);
        let mut saw = [false; 3];
        for _ in 0..5000 {
            let e = g.next_event();
            match e.op {
                Op::Delete => {
                    let t = g.next_event();
                    assert_eq!(t.op, Op::Tombstone);
                    assert_eq!(t.key, e.key);
                    assert!(t.value.is_none());
                    saw[0] = true;
                }
                Op::Update => {
                    let v = e.value.expect("update has a value");
                    assert!(!v["before"].is_null());
                    assert_eq!(v["before"]["id"], v["after"]["id"]);
                    saw[1] = true;
                }
                Op::Create => saw[2] = true,
                Op::Tombstone => panic!("tombstone without delete"),
            }
        }
        assert_eq!(saw, [true; 3]);
    }
}
