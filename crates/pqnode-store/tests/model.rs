//! The store against a model: random sequences of writes, reads, record expiries and sweeps
//! must leave the store (read cache included) agreeing with a plain in-memory map.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pqnode_store::{Store, Table};
use proptest::prelude::*;

const TABLES: [Table; 3] = [Table::Routing, Table::Records, Table::Messages];

#[derive(Debug, Clone)]
enum Op {
    Put { table: usize, key: u8, value: u8 },
    Delete { table: usize, key: u8 },
    PutRecord { key: u8, value: u8, expires: u64 },
    Sweep { now: u64 },
    Get { table: usize, key: u8 },
    GetRecord { key: u8, now: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    // A few keys and times, so operations keep landing on each other.
    let table = 0..TABLES.len();
    let key = 0u8..6;
    let time = 0u64..8;
    prop_oneof![
        (table.clone(), key.clone(), any::<u8>()).prop_map(|(table, key, value)| Op::Put {
            table,
            key,
            value
        }),
        (table.clone(), key.clone()).prop_map(|(table, key)| Op::Delete { table, key }),
        (key.clone(), any::<u8>(), time.clone()).prop_map(|(key, value, expires)| Op::PutRecord {
            key,
            value,
            expires
        }),
        time.clone().prop_map(|now| Op::Sweep { now }),
        (table, key.clone()).prop_map(|(table, key)| Op::Get { table, key }),
        (key, time).prop_map(|(key, now)| Op::GetRecord { key, now }),
    ]
}

#[derive(Default)]
struct Model {
    rows: BTreeMap<(Table, u8), u8>,
    expiries: BTreeMap<u8, u64>,
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

async fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("model.redb")).await.unwrap();
    let mut model = Model::default();

    for op in ops {
        match op {
            Op::Put { table, key, value } => {
                let table = TABLES[table];
                store.put(table, [key], vec![value]).await.unwrap();
                model.rows.insert((table, key), value);
                if table == Table::Records {
                    model.expiries.remove(&key);
                }
            }
            Op::Delete { table, key } => {
                let table = TABLES[table];
                let existed = store.delete(table, [key]).await.unwrap();
                prop_assert_eq!(existed, model.rows.remove(&(table, key)).is_some());
                if table == Table::Records {
                    model.expiries.remove(&key);
                }
            }
            Op::PutRecord {
                key,
                value,
                expires,
            } => {
                store
                    .put_record([key], vec![value], at(expires))
                    .await
                    .unwrap();
                model.rows.insert((Table::Records, key), value);
                model.expiries.insert(key, expires);
            }
            Op::Sweep { now } => {
                let swept = store.sweep_expired_records(at(now)).await.unwrap();
                let due: Vec<u8> = model
                    .expiries
                    .iter()
                    .filter(|&(_, &expires)| expires <= now)
                    .map(|(&key, _)| key)
                    .collect();
                for key in &due {
                    model.expiries.remove(key);
                    model.rows.remove(&(Table::Records, *key));
                }
                prop_assert_eq!(swept, due.len() as u64);
            }
            Op::Get { table, key } => {
                let table = TABLES[table];
                let got = store.get(table, [key]).await.unwrap();
                let expected = model.rows.get(&(table, key)).map(|&v| Bytes::from(vec![v]));
                prop_assert_eq!(got, expected);
            }
            Op::GetRecord { key, now } => {
                let got = store.get_record([key], at(now)).await.unwrap();
                let expired = model.expiries.get(&key).is_some_and(|&e| e <= now);
                let expected = model
                    .rows
                    .get(&(Table::Records, key))
                    .filter(|_| !expired)
                    .map(|&v| Bytes::from(vec![v]));
                prop_assert_eq!(got.map(|record| record.value), expected);
            }
        }
    }

    for table in TABLES {
        let stored: Vec<(Bytes, Bytes)> = store.scan(table).await.unwrap();
        let expected: Vec<(Bytes, Bytes)> = model
            .rows
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|(&(_, key), &value)| (Bytes::from(vec![key]), Bytes::from(vec![value])))
            .collect();
        prop_assert_eq!(stored, expected, "table {}", table);
    }
    let stats = store.stats().await;
    prop_assert_eq!(stats.expiring_records, Some(model.expiries.len() as u64));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn store_agrees_with_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(check(ops))?;
    }
}
