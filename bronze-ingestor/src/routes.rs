//! Which Bronze table, format and source system a topic goes to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{BronzeConfig, default_table_for_topic};
use lakehouse::catalog::TableName;
use lakehouse::config::ValueFormat;

/// Where one topic's messages go.
#[derive(Debug, Clone)]
pub struct Route {
    pub table: TableName,
    pub format: ValueFormat,
    pub source_system: Arc<str>,
}

/// Topic → route, from explicit routes or the default rule.
#[derive(Debug)]
pub struct Router {
    namespace: String,
    default_format: ValueFormat,
    explicit: HashMap<String, crate::config::Route>,
    cache: Mutex<HashMap<String, Arc<Route>>>,
}

impl Router {
    pub fn new(config: &BronzeConfig) -> Self {
        Self {
            namespace: config.namespace.clone(),
            default_format: config.default_format,
            explicit: config.routes.iter().map(|r| (r.topic.clone(), r.clone())).collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn route(&self, topic: &str) -> Arc<Route> {
        let mut cache = self.cache.lock().expect("router cache lock is never poisoned");
        if let Some(r) = cache.get(topic) {
            return r.clone();
        }
        let explicit = self.explicit.get(topic);
        let table = explicit.map_or_else(|| default_table_for_topic(topic), |r| r.table.clone());
        let source_system = explicit
            .and_then(|r| r.source_system.clone())
            .unwrap_or_else(|| topic.split('.').next().unwrap_or(topic).to_string());
        let route = Arc::new(Route {
            table: TableName::new(self.namespace.clone(), table),
            format: explicit.and_then(|r| r.format).unwrap_or(self.default_format),
            source_system: source_system.into(),
        });
        cache.insert(topic.to_string(), route.clone());
        route
    }
}
