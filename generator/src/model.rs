//! The commerce model and its event stream (no I/O here).
//!
//! With [`Faults`], the stream also carries what a real pipeline meets: bad
//! records (malformed JSON, a wrong JSON type, a rule violation, an unknown
//! op), duplicated deliveries of an earlier change and late (out-of-order)
//! deliveries of a change after a newer one of the same key. None of them
//! changes the source's state: [`Generator::live_rows`] stays the expected
//! final state per key, and [`Generator::expected_rejects`] counts the bad
//! records by the rule the commerce contracts reject them with. A duplicate or
//! late change of a key is only ever delivered while the key is live (a delete
//! first flushes the key's held-back changes), so no older version can follow
//! a delete in delivery order. Faults draw from their own random stream: a
//! seed's stream without faults is unchanged.

use std::collections::{BTreeMap, VecDeque};

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
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
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
    /// A bad record (see [`Event::reject_rule`]); it changes nothing.
    Bad,
}

/// How a message relates to the source's change stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The change, in source order.
    InOrder,
    /// The change, delivered after a newer change of the same key.
    Late,
    /// A second delivery of an earlier change.
    Duplicate,
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Event {
    pub table: usize,
    pub op: Op,
    pub key: Value,
    /// `None` for a tombstone.
    pub value: Option<Value>,
    /// Sent as this text instead of `value` (malformed JSON, on purpose).
    pub raw: Option<String>,
    pub delivery: Delivery,
    /// For [`Op::Bad`]: the rule the commerce contract rejects it by.
    pub reject_rule: Option<&'static str>,
}

/// Shares (0..1) of bad, duplicated and late messages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub bad: f64,
    pub duplicate: f64,
    pub out_of_order: f64,
}

impl Faults {
    pub fn any(&self) -> bool {
        self.bad > 0.0 || self.duplicate > 0.0 || self.out_of_order > 0.0
    }
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
    /// Stamp `ts_ms` with the wall clock instead (see [`Generator::with_wall_clock`]).
    wall_clock: bool,
    /// Business dates follow the source clock (see [`Generator::with_live_dates`]).
    live_dates: bool,
    tx: i64,
    lsn: i64,
    pending_tombstone: Option<(usize, Value)>,
    faults: Faults,
    fault_rng: Rng,
    /// Messages to deliver before anything new.
    ready: VecDeque<Event>,
    /// Held-back changes and the message count at which they are delivered.
    delayed: Vec<(u64, Event)>,
    /// Recent changes, for duplicates.
    recent: VecDeque<Event>,
    delivered: u64,
    bad_seq: i64,
    rejects: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            live: Default::default(),
            next_id: [1001, 101, 10001, 100001],
            clock_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            wall_clock: false,
            live_dates: false,
            tx: 500,
            lsn: 24_023_128,
            pending_tombstone: None,
            faults: Faults::default(),
            fault_rng: Rng::new(seed ^ 0x5EED_FA17),
            ready: VecDeque::new(),
            delayed: Vec::new(),
            recent: VecDeque::new(),
            delivered: 0,
            bad_seq: 0,
            rejects: BTreeMap::new(),
        }
    }

    /// Source times (`ts_ms`) from the wall clock, never going back (several
    /// changes share a millisecond at high rates; the LSN orders them), so that
    /// freshness (source time → visible downstream) can be measured. The
    /// stream's content is the seed's either way.
    pub fn with_wall_clock(mut self) -> Self {
        self.wall_clock = true;
        self
    }

    /// Business dates follow the source clock, as in a live shop: an order is
    /// dated the day of its creation (2% of them up to 30 days earlier: late
    /// arrivals), and an order's update changes its status and total but keeps
    /// its customer and date. Without it, every order (and every update of
    /// one) gets a date anywhere in 2026 and a random customer: the stress case
    /// for Gold (key changes, late events in closed windows), but not a shop.
    pub fn with_live_dates(mut self) -> Self {
        self.live_dates = true;
        self
    }

    /// A generator whose stream carries `faults` (module docs).
    pub fn with_faults(seed: u64, faults: Faults) -> Self {
        Self { faults, ..Self::new(seed) }
    }

    /// The live rows of every table (the expected final state): table → rows, by id.
    pub fn live_rows(&self) -> BTreeMap<&'static str, Vec<Value>> {
        TABLES
            .iter()
            .enumerate()
            .map(|(t, name)| {
                let mut rows: Vec<(i64, Value)> = self.live[t].clone();
                rows.sort_by_key(|r| r.0);
                (*name, rows.into_iter().map(|r| r.1).collect())
            })
            .collect()
    }

    /// Bad records produced so far: table → rule → count.
    pub fn expected_rejects(&self) -> &BTreeMap<&'static str, BTreeMap<&'static str, u64>> {
        &self.rejects
    }

    /// The held-back changes not delivered yet (deliver them after the last
    /// [`Generator::next_event`], or the stream misses them).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.ready.drain(..).collect();
        self.delayed.sort_by_key(|(at, _)| *at);
        out.extend(self.delayed.drain(..).map(|(_, e)| e));
        out
    }

    /// The next message: held-back and queued ones first, then (with faults) a
    /// bad record or a duplicate, else the next change of the source.
    pub fn next_event(&mut self) -> Event {
        self.delivered += 1;
        if let Some(e) = self.ready.pop_front() {
            return e;
        }
        if let Some(i) = self.delayed.iter().position(|(at, _)| *at <= self.delivered) {
            return self.delayed.remove(i).1;
        }
        if !self.faults.any() {
            return self.source_event();
        }
        let roll = self.fault_rng.unit();
        if roll < self.faults.bad {
            return self.bad_event();
        }
        if roll < self.faults.bad + self.faults.duplicate && !self.recent.is_empty() {
            let i = self.fault_rng.below(self.recent.len() as u64) as usize;
            let e = &self.recent[i];
            let id = e.key["id"].as_i64().unwrap_or_default();
            if self.live[e.table].iter().any(|(x, _)| *x == id) {
                return Event { delivery: Delivery::Duplicate, ..e.clone() };
            }
        }
        loop {
            let e = self.source_event();
            match e.op {
                Op::Create | Op::Update => {
                    self.recent.push_back(e.clone());
                    if self.recent.len() > 64 {
                        self.recent.pop_front();
                    }
                    if self.fault_rng.unit() < self.faults.out_of_order {
                        let at = self.delivered + 1 + self.fault_rng.below(30);
                        self.delayed.push((at, Event { delivery: Delivery::Late, ..e }));
                        continue;
                    }
                    return e;
                }
                Op::Delete => {
                    // The key's held-back changes go first: nothing older follows a delete.
                    let mut i = 0;
                    while i < self.delayed.len() {
                        if self.delayed[i].1.table == e.table && self.delayed[i].1.key == e.key {
                            let (_, mut d) = self.delayed.remove(i);
                            d.delivery = Delivery::InOrder;
                            self.ready.push_back(d);
                        } else {
                            i += 1;
                        }
                    }
                    self.recent.retain(|r| !(r.table == e.table && r.key == e.key));
                    self.ready.push_back(e);
                    if let Some((table, key)) = self.pending_tombstone.take() {
                        self.ready.push_back(plain(table, Op::Tombstone, key, None));
                    }
                    return self.ready.pop_front().expect("the delete was queued");
                }
                _ => return e,
            }
        }
    }

    /// A bad record of a random table (its key outside the live ids).
    fn bad_event(&mut self) -> Event {
        let table = match self.fault_rng.below(10) {
            0 => 0,
            1 => 1,
            2..=5 => 2,
            _ => 3,
        };
        self.bad_seq += 1;
        self.lsn += 1;
        let id = 2_000_000_000 + self.bad_seq;
        let kind = self.fault_rng.below(4);
        let mut after = self.row(table, id, None);
        let (rule, raw, op) = match kind {
            0 => ("parse", Some(format!("{{\"before\":null,\"after\":{{\"id\":{id},")), "c"),
            1 => ("parse", None, "x"),
            2 => {
                // An object where a number belongs.
                let column = ["id", "id", "customer_id", "quantity"][table];
                after[column] = json!({"unexpected": true});
                ("type", None, "c")
            }
            _ => {
                let rule = match table {
                    0 => {
                        after["email"] = json!("not-an-email");
                        "regex"
                    }
                    1 => {
                        after["price"] = json!(-1.5);
                        "min"
                    }
                    2 => {
                        after["status"] = json!("lost");
                        "allowed"
                    }
                    _ => {
                        after["quantity"] = json!(0);
                        "min"
                    }
                };
                (rule, None, "c")
            }
        };
        *self.rejects.entry(TABLES[table]).or_default().entry(rule).or_default() += 1;
        let value = json!({
            "before": null, "after": after,
            "source": {"version": "2.7.3.Final", "connector": "postgresql", "name": "commerce",
                       "ts_ms": self.clock_ms, "snapshot": "false", "db": "commerce", "sequence": null,
                       "schema": "public", "table": TABLES[table], "txId": self.tx, "lsn": self.lsn, "xmin": null},
            "op": op, "ts_ms": self.clock_ms, "transaction": null
        });
        Event {
            table,
            op: Op::Bad,
            key: json!({"id": id}),
            value: Some(value),
            raw,
            delivery: Delivery::InOrder,
            reject_rule: Some(rule),
        }
    }

    /// Live rows per table (what a correct Silver would hold).
    pub fn live_counts(&self) -> [usize; 4] {
        [self.live[0].len(), self.live[1].len(), self.live[2].len(), self.live[3].len()]
    }

    fn row(&mut self, table: usize, id: i64, old: Option<&Value>) -> Value {
        let today = self.clock_ms.div_euclid(86_400_000);
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
                let mut customer = 1001 + r.below((self.next_id[0] - 1001).max(1) as u64) as i64;
                let mut date = 20_454 + r.below(365) as i64;
                if self.live_dates {
                    date = if r.below(100) < 2 { today - 1 - r.below(30) as i64 } else { today };
                    if let Some(old) = old {
                        customer = old["customer_id"].as_i64().unwrap_or(customer);
                        date = old["order_date"].as_i64().unwrap_or(date);
                    }
                }
                json!({"id": id, "customer_id": customer, "status": r.pick(STATUS),
                       "order_date": date, "total": (r.below(1_000_000) as f64) / 100.0})
            }
            _ => {
                let order = 10001 + r.below((self.next_id[2] - 10001).max(1) as u64) as i64;
                let product = 101 + r.below((self.next_id[1] - 101).max(1) as u64) as i64;
                json!({"id": id, "order_id": order, "product_id": product,
                       "quantity": 1 + r.below(9) as i64, "unit_price": (r.below(50_000) as f64) / 100.0})
            }
        }
    }

    /// The next change of the source (and the tombstone after a delete).
    fn source_event(&mut self) -> Event {
        if let Some((table, key)) = self.pending_tombstone.take() {
            return plain(table, Op::Tombstone, key, None);
        }
        let step = 1 + self.rng.below(20) as i64;
        self.clock_ms = if self.wall_clock {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(0, |d| d.as_millis() as i64).max(self.clock_ms)
        } else {
            self.clock_ms + step
        };
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
                let row = self.row(table, id, None);
                self.live[table].push((id, row.clone()));
                (Value::Null, row, id)
            }
            Op::Update => {
                let i = self.rng.below(live as u64) as usize;
                let id = self.live[table][i].0;
                let old = self.live[table][i].1.clone();
                let new = self.row(table, id, Some(&old));
                let old = std::mem::replace(&mut self.live[table][i].1, new.clone());
                (old, new, id)
            }
            Op::Delete | Op::Tombstone | Op::Bad => {
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
        plain(table, op, key, Some(value))
    }
}

fn plain(table: usize, op: Op, key: Value, value: Option<Value>) -> Event {
    Event { table, op, key, value, raw: None, delivery: Delivery::InOrder, reject_rule: None }
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

    /// Live dates: orders are dated their creation day or up to 30 days
    /// before it, and an update keeps the order's customer and date.
    #[test]
    fn live_dates_follow_the_source_clock() {
        let mut g = Generator::new(5).with_live_dates();
        let (mut today, mut late, mut updates) = (0, 0, 0);
        for _ in 0..20_000 {
            let e = g.next_event();
            let Some(v) = e.value.as_ref().filter(|_| e.table == 2) else { continue };
            let day = v["ts_ms"].as_i64().expect("ts_ms").div_euclid(86_400_000);
            match v["op"].as_str() {
                Some("c") => {
                    let date = v["after"]["order_date"].as_i64().expect("date");
                    assert!(date <= day && date >= day - 30, "order dated {date} on day {day}");
                    if date == day { today += 1 } else { late += 1 }
                }
                Some("u") => {
                    let (b, a) = (&v["before"], &v["after"]);
                    assert_eq!(b["customer_id"], a["customer_id"]);
                    assert_eq!(b["order_date"], a["order_date"]);
                    updates += 1;
                }
                _ => {}
            }
        }
        assert!(today > 1000 && late > 10 && late < today / 10, "{today} today, {late} late");
        assert!(updates > 500, "{updates} updates");
    }

    /// With faults: every bad record is counted by rule, duplicates and late
    /// changes are only of live keys, nothing older follows a delete of its key,
    /// and the live rows are what applying the newest version per key gives.
    #[test]
    fn faults_keep_the_final_state_and_count_the_rejects() {
        let faults = Faults { bad: 0.05, duplicate: 0.05, out_of_order: 0.05 };
        let mut g = Generator::with_faults(3, faults);
        let mut events: Vec<Event> = (0..20_000).map(|_| g.next_event()).collect();
        events.extend(g.drain());
        let mut state: BTreeMap<(usize, i64), (i64, Option<Value>)> = BTreeMap::new();
        let (mut bad, mut dup, mut late) = (0u64, 0, 0);
        let mut deleted: std::collections::HashSet<(usize, i64)> = Default::default();
        for e in &events {
            let id = e.key["id"].as_i64().expect("id");
            match e.delivery {
                Delivery::Duplicate => dup += 1,
                Delivery::Late => late += 1,
                Delivery::InOrder => {}
            }
            let Some(v) = &e.value else { continue };
            if e.op == Op::Bad {
                bad += 1;
                continue;
            }
            assert!(!deleted.contains(&(e.table, id)), "a change of {id} after its delete");
            let lsn = v["source"]["lsn"].as_i64().expect("lsn");
            let after = (e.op != Op::Delete).then(|| v["after"].clone());
            if e.op == Op::Delete {
                deleted.insert((e.table, id));
            }
            let slot = state.entry((e.table, id)).or_insert((lsn, after.clone()));
            if lsn >= slot.0 {
                *slot = (lsn, after);
            }
        }
        assert!(bad > 500 && dup > 500 && late > 500, "bad {bad}, duplicates {dup}, late {late}");
        let counted: u64 = g.expected_rejects().values().flat_map(|r| r.values()).sum();
        assert_eq!(counted, bad);
        let rules: std::collections::BTreeSet<&str> =
            g.expected_rejects().values().flat_map(|r| r.keys().copied()).collect();
        assert_eq!(rules.into_iter().collect::<Vec<_>>(), ["allowed", "min", "parse", "regex", "type"]);
        for (t, name) in TABLES.iter().enumerate() {
            let want: Vec<Value> = state
                .iter()
                .filter(|((table, _), (_, after))| *table == t && after.is_some())
                .map(|(_, (_, after))| after.clone().expect("filtered"))
                .collect();
            assert_eq!(g.live_rows()[name], want, "{name}: newest version per key = the live rows");
        }
        // Without faults the stream is the one a seed always gave.
        let (mut a, mut b) = (Generator::new(9), Generator::with_faults(9, Faults::default()));
        assert!((0..500).all(|_| a.next_event().value == b.next_event().value));
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
                Op::Bad => panic!("no faults were asked for"),
            }
        }
        assert_eq!(saw, [true; 3]);
    }
}
