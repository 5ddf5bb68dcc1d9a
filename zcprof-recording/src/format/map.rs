//! [`SortedMap`]: the name-keyed maps of a recording (layers, syscalls, probes), a sorted
//! vector with the part of `BTreeMap`'s API the crates use.
//!
//! Why not `BTreeMap`: a recording holds three small maps per process (two layers, a few
//! syscalls or probes each), and a `BTreeMap` allocates a whole node of eleven slots for
//! even one entry — about 3 KiB per process, four times the process's JSON text, so a
//! 200 MB recording took 900 MB to read. A vector sized to its entries takes what they
//! need. Order, JSON form and equality are those of a `BTreeMap` (sorted by name; a
//! repeated name keeps its last value, as any JSON object read into a map).

use std::{fmt, ops::Index};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap as _,
};

/// A map from names to `V`, sorted by name.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<V> SortedMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// The entry for `key`, to read, change or fill in place.
    pub fn entry(&mut self, key: String) -> MapEntry<'_, V> {
        let at = self.find(&key);
        MapEntry { map: self, key, at }
    }

    /// Entries in name order.
    pub fn iter(&self) -> Iter<'_, V> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

/// The iterator of [`SortedMap::iter`].
pub type Iter<'a, V> =
    std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> (&'a String, &'a V)>;

/// One name's place in a [`SortedMap`], as `btree_map::Entry` is for a `BTreeMap`.
pub struct MapEntry<'a, V> {
    map: &'a mut SortedMap<V>,
    key: String,
    /// Where the name is (`Ok`) or would go (`Err`).
    at: Result<usize, usize>,
}

impl<'a, V> MapEntry<'a, V> {
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let i = match self.at {
            Ok(i) => i,
            Err(i) => {
                self.map.entries.insert(i, (self.key, make()));
                i
            }
        };
        &mut self.map.entries[i].1
    }

    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    pub fn and_modify(self, change: impl FnOnce(&mut V)) -> Self {
        if let Ok(i) = self.at {
            change(&mut self.map.entries[i].1);
        }
        self
    }
}

impl<V> Index<&str> for SortedMap<V> {
    type Output = V;

    /// Panics when `key` is absent, as `BTreeMap`'s does.
    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no entry named `{key}`"))
    }
}

impl<V> Index<&String> for SortedMap<V> {
    type Output = V;

    fn index(&self, key: &String) -> &V {
        &self[key.as_str()]
    }
}

impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(items: I) -> Self {
        let mut map = SortedMap::new();
        map.extend(items);
        map
    }
}

impl<V> Extend<(String, V)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl<V, const N: usize> From<[(String, V); N]> for SortedMap<V> {
    fn from(items: [(String, V); N]) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<V: fmt::Debug> fmt::Debug for SortedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = SortedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = SortedMap::new();
                while let Some((k, v)) = access.next_entry::<String, V>()? {
                    // zcprof writes names in order: appending is the common case.
                    match map.entries.last() {
                        Some((last, _)) if *last < k => map.entries.push((k, v)),
                        None => map.entries.push((k, v)),
                        Some(_) => {
                            map.insert(k, v);
                        }
                    }
                }
                map.entries.shrink_to_fit();
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn behaves_as_a_btree_map() {
        let pairs = [("write", 2), ("read", 1), ("splice", 3), ("read", 4)];
        let mut ours = SortedMap::new();
        let mut theirs = BTreeMap::new();
        for (k, v) in pairs {
            assert_eq!(
                ours.insert(k.to_string(), v),
                theirs.insert(k.to_string(), v)
            );
        }
        let listed: Vec<_> = ours.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let expected: Vec<_> = theirs.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(listed, expected);
        assert_eq!(ours["read"], 4);
        assert_eq!(ours.get("nope"), None);
        *ours.entry("write".into()).or_default() += 10;
        ours.entry("tee".into())
            .and_modify(|v| *v += 1)
            .or_insert(7);
        ours.entry("tee".into())
            .and_modify(|v| *v += 1)
            .or_insert(0);
        assert_eq!((ours["write"], ours["tee"]), (12, 8));
        assert_eq!(ours.remove("splice"), Some(3));
        assert_eq!(format!("{ours:?}"), r#"{"read": 4, "tee": 8, "write": 12}"#);
    }

    #[test]
    fn json_is_a_btree_maps() {
        let text = r#"{"b":2,"a":1,"c":3,"a":5}"#;
        let ours: SortedMap<u32> = serde_json::from_str(text).expect("parses");
        let theirs: BTreeMap<String, u32> = serde_json::from_str(text).expect("parses");
        assert_eq!(
            serde_json::to_string(&ours).expect("json"),
            serde_json::to_string(&theirs).expect("json")
        );
        assert!(serde_json::from_str::<SortedMap<u32>>("[1]").is_err());
    }
}
