//! The controller's replicated state and the events that change it
//! (RocketMQ 5's `ReplicasInfoManager`): per broker group, its replicas'
//! ids and addresses, the master, the master epoch and the in-sync replica
//! set. Events are applied in Raft log order on every controller node, so
//! `apply` is deterministic: every check that decides an outcome is made
//! here, against the state the event meets, never against what the
//! proposing leader saw.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::codes;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// Client address (brokerAddr).
    pub addr: String,
    /// Where it accepts slaves (haListenPort).
    pub ha_addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub cluster: String,
    pub replicas: BTreeMap<i64, Replica>,
    pub master: Option<i64>,
    pub master_epoch: i32,
    pub sync_set: BTreeSet<i64>,
    pub sync_set_epoch: i32,
}

impl Group {
    pub fn next_id(&self) -> i64 {
        self.replicas.keys().next_back().map_or(1, |id| id + 1)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub groups: BTreeMap<String, Group>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// CONTROLLER_APPLY_BROKER_ID: `id` joins group `name`.
    ApplyBrokerId {
        cluster: String,
        name: String,
        id: i64,
        addr: String,
    },
    /// CONTROLLER_REGISTER_BROKER: a replica's current addresses.
    Register {
        name: String,
        id: i64,
        addr: String,
        ha_addr: String,
    },
    /// A new master (or none alive: `None`), if the epoch is still
    /// `expect_epoch`.
    ElectMaster {
        name: String,
        master: Option<i64>,
        expect_epoch: i32,
    },
    /// CONTROLLER_ALTER_SYNC_STATE_SET from the master of `master_epoch`.
    AlterSyncStateSet {
        name: String,
        master: i64,
        master_epoch: i32,
        set: BTreeSet<i64>,
        set_epoch: i32,
    },
}

/// What applying an event did: a response code, and the group after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub code: i32,
    pub remark: Option<String>,
    pub group: Option<Group>,
}

fn refused(code: i32, why: String) -> Outcome {
    Outcome {
        code,
        remark: Some(why),
        group: None,
    }
}

impl Metadata {
    pub fn apply(&mut self, e: &Event) -> Outcome {
        match e {
            Event::ApplyBrokerId {
                cluster,
                name,
                id,
                addr,
            } => {
                let g = self.groups.entry(name.clone()).or_insert_with(|| Group {
                    cluster: cluster.clone(),
                    ..Group::default()
                });
                if let Some(r) = g.replicas.get(id) {
                    if r.addr != *addr {
                        return refused(
                            codes::BROKER_ID_INVALID,
                            format!("brokerId {id} of {name} belongs to {}", r.addr),
                        );
                    }
                } else if *id != g.next_id() {
                    return refused(
                        codes::BROKER_ID_INVALID,
                        format!(
                            "brokerId {id} of {name} is not the next one ({})",
                            g.next_id()
                        ),
                    );
                } else {
                    g.replicas.insert(
                        *id,
                        Replica {
                            addr: addr.clone(),
                            ha_addr: String::new(),
                        },
                    );
                }
                ok(g)
            }
            Event::Register {
                name,
                id,
                addr,
                ha_addr,
            } => {
                let g = match self.groups.get_mut(name) {
                    Some(g) => g,
                    None => return no_group(name),
                };
                let Some(r) = g.replicas.get_mut(id) else {
                    return refused(
                        codes::BROKER_METADATA_NOT_EXIST,
                        format!("{name} has no brokerId {id}: apply for it first"),
                    );
                };
                r.addr = addr.clone();
                r.ha_addr = ha_addr.clone();
                ok(g)
            }
            Event::ElectMaster {
                name,
                master,
                expect_epoch,
            } => {
                let g = match self.groups.get_mut(name) {
                    Some(g) => g,
                    None => return no_group(name),
                };
                if g.master_epoch != *expect_epoch {
                    return refused(
                        codes::FENCED_MASTER_EPOCH,
                        format!(
                            "{name} is at master epoch {}, not {expect_epoch}",
                            g.master_epoch
                        ),
                    );
                }
                match master {
                    Some(id) if !g.replicas.contains_key(id) => refused(
                        codes::INVALID_REPLICAS,
                        format!("{name} has no brokerId {id}"),
                    ),
                    Some(id) => {
                        g.master = Some(*id);
                        g.master_epoch += 1;
                        g.sync_set = BTreeSet::from([*id]);
                        g.sync_set_epoch += 1;
                        ok(g)
                    }
                    None => {
                        g.master = None;
                        Outcome {
                            code: codes::MASTER_NOT_AVAILABLE,
                            remark: Some(format!("{name}: no in-sync replica is alive")),
                            group: Some(g.clone()),
                        }
                    }
                }
            }
            Event::AlterSyncStateSet {
                name,
                master,
                master_epoch,
                set,
                set_epoch,
            } => {
                let g = match self.groups.get_mut(name) {
                    Some(g) => g,
                    None => return no_group(name),
                };
                if g.master != Some(*master) || g.master_epoch != *master_epoch {
                    return refused(
                        codes::FENCED_MASTER_EPOCH,
                        format!(
                            "{name}'s master is {:?} at epoch {}",
                            g.master, g.master_epoch
                        ),
                    );
                }
                if g.sync_set_epoch != *set_epoch {
                    return refused(
                        codes::FENCED_SYNC_STATE_SET_EPOCH,
                        format!("{name}'s sync state set is at epoch {}", g.sync_set_epoch),
                    );
                }
                if !set.contains(master) || set.iter().any(|id| !g.replicas.contains_key(id)) {
                    return refused(
                        codes::INVALID_REPLICAS,
                        format!("{set:?} is not a set of {name}'s replicas with its master"),
                    );
                }
                g.sync_set = set.clone();
                g.sync_set_epoch += 1;
                ok(g)
            }
        }
    }
}

fn no_group(name: &str) -> Outcome {
    refused(
        codes::BROKER_METADATA_NOT_EXIST,
        format!("no broker group {name}"),
    )
}

fn ok(g: &Group) -> Outcome {
    Outcome {
        code: 0,
        remark: None,
        group: Some(g.clone()),
    }
}

/// What the leader knows of a replica from its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub epoch: i32,
    pub max_offset: i64,
    pub priority: i32,
}

/// Who should be master of `g` now: `None` when the master is alive (no
/// election) or no candidate is. Candidates are the alive members of the
/// in-sync set (only they hold every acknowledged message), preferring
/// the highest epoch, then the longest log, then the lowest
/// `brokerElectionPriority`, then the lowest id. A group that never had a
/// master takes any alive replica, `preferred` (the asking broker) first.
pub fn pick_master(
    g: &Group,
    alive: &dyn Fn(i64) -> Option<Liveness>,
    preferred: Option<i64>,
) -> Option<i64> {
    if g.master.is_some_and(|m| alive(m).is_some()) {
        return None;
    }
    if g.master.is_none() && g.master_epoch == 0 {
        if let Some(p) = preferred.filter(|p| g.replicas.contains_key(p) && alive(*p).is_some()) {
            return Some(p);
        }
        return g.replicas.keys().copied().find(|id| alive(*id).is_some());
    }
    g.sync_set
        .iter()
        .filter(|id| Some(**id) != g.master)
        .filter_map(|id| alive(*id).map(|l| (*id, l)))
        .chain(
            // The master itself, back after it was declared lost with no
            // one to replace it.
            g.master
                .is_none()
                .then(|| {
                    g.sync_set
                        .iter()
                        .filter_map(|id| alive(*id).map(|l| (*id, l)))
                })
                .into_iter()
                .flatten(),
        )
        .min_by_key(|(id, l)| (-(l.epoch as i64), -l.max_offset, l.priority, *id))
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of_three() -> Metadata {
        let mut m = Metadata::default();
        for id in 1..=3 {
            let o = m.apply(&Event::ApplyBrokerId {
                cluster: "c".into(),
                name: "b".into(),
                id,
                addr: format!("a{id}"),
            });
            assert_eq!(o.code, 0, "{o:?}");
        }
        m
    }

    #[test]
    fn ids_are_handed_out_in_order_and_kept() {
        let mut m = group_of_three();
        let g = &m.groups["b"];
        assert_eq!(g.next_id(), 4);
        let again = m.apply(&Event::ApplyBrokerId {
            cluster: "c".into(),
            name: "b".into(),
            id: 2,
            addr: "a2".into(),
        });
        assert_eq!(again.code, 0, "re-applying one's own id is fine");
        let taken = m.apply(&Event::ApplyBrokerId {
            cluster: "c".into(),
            name: "b".into(),
            id: 2,
            addr: "elsewhere".into(),
        });
        assert_eq!(taken.code, codes::BROKER_ID_INVALID);
        let skip = m.apply(&Event::ApplyBrokerId {
            cluster: "c".into(),
            name: "b".into(),
            id: 9,
            addr: "a9".into(),
        });
        assert_eq!(skip.code, codes::BROKER_ID_INVALID);
    }

    #[test]
    fn elections_move_the_epoch_and_reset_the_sync_set() {
        let mut m = group_of_three();
        let o = m.apply(&Event::ElectMaster {
            name: "b".into(),
            master: Some(1),
            expect_epoch: 0,
        });
        assert_eq!(o.code, 0);
        let g = o.group.unwrap();
        assert_eq!(
            (g.master, g.master_epoch, g.sync_set_epoch),
            (Some(1), 1, 1)
        );
        // A proposal made against an older epoch is refused.
        let stale = m.apply(&Event::ElectMaster {
            name: "b".into(),
            master: Some(2),
            expect_epoch: 0,
        });
        assert_eq!(stale.code, codes::FENCED_MASTER_EPOCH);
        let alter = |m: &mut Metadata, set: &[i64], master_epoch, set_epoch| {
            m.apply(&Event::AlterSyncStateSet {
                name: "b".into(),
                master: 1,
                master_epoch,
                set: set.iter().copied().collect(),
                set_epoch,
            })
            .code
        };
        assert_eq!(alter(&mut m, &[1, 2, 3], 1, 1), 0);
        assert_eq!(
            alter(&mut m, &[1, 2], 1, 1),
            codes::FENCED_SYNC_STATE_SET_EPOCH
        );
        assert_eq!(alter(&mut m, &[1, 2], 0, 2), codes::FENCED_MASTER_EPOCH);
        assert_eq!(alter(&mut m, &[2, 3], 1, 2), codes::INVALID_REPLICAS);
        assert_eq!(alter(&mut m, &[1, 7], 1, 2), codes::INVALID_REPLICAS);
        assert_eq!(m.groups["b"].sync_set, BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn the_new_master_is_the_best_alive_in_sync_replica() {
        let mut g = Group {
            cluster: "c".into(),
            master: Some(1),
            master_epoch: 3,
            sync_set: BTreeSet::from([1, 2, 3]),
            ..Group::default()
        };
        for id in 1..=4 {
            g.replicas.insert(id, Replica::default());
        }
        let live = |epoch, max_offset, priority| {
            Some(Liveness {
                epoch,
                max_offset,
                priority,
            })
        };
        // The master is alive: no election.
        assert_eq!(pick_master(&g, &|_| live(3, 0, 0), None), None);
        // Master 1 dead; 4 is not in sync, however long its log.
        let alive = |id: i64| match id {
            2 => live(3, 100, 5),
            3 => live(3, 120, 9),
            4 => live(3, 999, 0),
            _ => None,
        };
        assert_eq!(pick_master(&g, &alive, None), Some(3));
        let tie = |id: i64| match id {
            2 | 3 => live(3, 100, if id == 2 { 1 } else { 0 }),
            _ => None,
        };
        assert_eq!(pick_master(&g, &tie, None), Some(3), "lower priority wins");
        assert_eq!(pick_master(&g, &|_| None, None), None);
        // A group that never had a master takes the asking broker.
        g.master = None;
        g.master_epoch = 0;
        assert_eq!(pick_master(&g, &|_| live(0, 0, 0), Some(4)), Some(4));
    }
}
