//! The dry-run backend: logs what it would do and remembers it, so the reconciler sees a
//! consistent picture and logs each change once.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::{Backend, BackendError, Changes};

/// Large enough never to be the limit; the `max_active` guard still applies.
pub const DRY_RUN_CAPACITY: usize = usize::MAX / 2;

#[derive(Debug, Default)]
pub struct DryRunBackend {
    held: BTreeSet<IpNet>,
}

impl DryRunBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for DryRunBackend {
    fn name(&self) -> String {
        "dry-run".into()
    }

    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        for t in &changes.add {
            tracing::info!(target = %t, "dry run: would block");
            self.held.insert(*t);
        }
        for t in &changes.remove {
            tracing::info!(target = %t, "dry run: would unblock");
            self.held.remove(t);
        }
        Ok(())
    }

    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        Ok(self.held.clone())
    }

    fn capacity(&self) -> usize {
        DRY_RUN_CAPACITY
    }
}
