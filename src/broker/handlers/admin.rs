//! Admin requests: topics (17, 215, 21), subscription groups (200, 201,
//! 207), message lookup by key (12) and by id (33), runtime info (28).
//! Topic and group changes run on shard 0 and reach the other shards by
//! metadata broadcast; lookups scatter to every shard and gather.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::BytesMut;

use crate::broker::mesh::ReqCtx;
use crate::broker::shard::{now_ms, response, Shard};
use crate::protocol::{decode_json, KvTable, SubscriptionGroupConfig, TopicConfig};
use crate::remoting::codes::response_code as rs;
use crate::remoting::{version, RemotingCommand};

/// Keys a QUERY_MESSAGE returns at most, whatever `maxNum` asks.
pub const QUERY_MAX_MESSAGES: usize = 64;

impl Shard {
    pub async fn handle_create_topic(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let parsed = (|| {
            let topic = cmd.ext_str("topic")?.to_string();
            let read = cmd.ext_i32_opt("readQueueNums")?.unwrap_or(16);
            let write = cmd.ext_i32_opt("writeQueueNums")?.unwrap_or(16);
            let perm = cmd.ext_i32_opt("perm")?.unwrap_or(6);
            Ok::<_, crate::remoting::HeaderError>((topic, read, write, perm))
        })();
        let (topic, read, write, perm) = match parsed {
            Ok(x) => x,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad header: {e}")),
        };
        if !rocketcore_storage::valid_topic(&topic) {
            return response(
                cmd,
                rs::INVALID_PARAMETER,
                format!("the specified topic is invalid: {topic:?}"),
            );
        }
        if !(1..=1024).contains(&read) || !(1..=1024).contains(&write) || !(0..=15).contains(&perm)
        {
            return response(
                cmd,
                rs::INVALID_PARAMETER,
                "queue numbers must be 1..=1024 and perm 0..=15".to_string(),
            );
        }
        let mut cfg = TopicConfig::new(&topic, write as u32);
        cfg.read_queue_nums = read as u32;
        cfg.perm = perm as u32;
        cfg.topic_filter_type = cmd
            .ext_str_opt("topicFilterType")
            .unwrap_or("SINGLE_TAG")
            .to_string();
        cfg.topic_sys_flag = cmd.ext_i32_opt("topicSysFlag").ok().flatten().unwrap_or(0) as u32;
        cfg.order = cmd.ext_bool_opt("order").unwrap_or(false);
        let Some(owner) = &self.owner else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "topics are created on shard 0".to_string(),
            );
        };
        let written = match owner.borrow_mut().put_topic(cfg) {
            Ok(w) => w,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        self.publish_meta();
        self.register_now.set(true);
        durable_reply(cmd, Some(written)).await
    }

    pub async fn handle_delete_topic(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(topic) = cmd.ext_str("topic") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing topic".to_string());
        };
        let Some(owner) = &self.owner else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "topics are deleted on shard 0".to_string(),
            );
        };
        let written = match owner.borrow_mut().delete_topic(topic) {
            Ok(w) => w,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        self.publish_meta();
        self.register_now.set(true);
        durable_reply(cmd, written).await
    }

    pub fn handle_all_topic_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let meta = self.meta();
        let table: BTreeMap<String, TopicConfig> = meta
            .topics
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let wrapper = crate::protocol::TopicConfigSerializeWrapper {
            topic_config_table: table,
            data_version: crate::protocol::DataVersion::now(),
        };
        // Returning everything at once and no totalTopicNum ends a 5.x
        // client's paging after one call (spec §2.6).
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&wrapper).unwrap_or_default())
    }

    pub async fn handle_create_group(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let cfg: SubscriptionGroupConfig = match decode_json(cmd.body.as_deref().unwrap_or(b"")) {
            Ok(c) => c,
            Err(e) => {
                return response(
                    cmd,
                    rs::SYSTEM_ERROR,
                    format!("bad subscription group body: {e}"),
                )
            }
        };
        if cfg.group_name.is_empty() || !rocketcore_storage::valid_topic(&cfg.group_name) {
            return response(
                cmd,
                rs::INVALID_PARAMETER,
                format!("invalid group name {:?}", cfg.group_name),
            );
        }
        let Some(owner) = &self.owner else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "groups are kept on shard 0".to_string(),
            );
        };
        let written = match owner.borrow_mut().put_group(cfg) {
            Ok(w) => w,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        self.publish_meta();
        durable_reply(cmd, Some(written)).await
    }

    pub fn handle_all_groups(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Some(owner) = &self.owner else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "groups are kept on shard 0".to_string(),
            );
        };
        let body = serde_json::to_vec(&owner.borrow().group_wrapper()).unwrap_or_default();
        response(cmd, rs::SUCCESS, None).with_body(body)
    }

    pub async fn handle_delete_group(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(group) = cmd.ext_str("groupName") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing groupName".to_string());
        };
        let Some(owner) = &self.owner else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "groups are kept on shard 0".to_string(),
            );
        };
        let written = match owner.borrow_mut().delete_group(group) {
            Ok(w) => w,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        self.publish_meta();
        durable_reply(cmd, written).await
    }

    /// QUERY_MESSAGE: asks every shard's index and merges the records.
    pub async fn handle_query_message(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: RemotingCommand,
    ) -> RemotingCommand {
        let mut body = BytesMut::new();
        let mut found = 0usize;
        for s in 0..self.shards {
            let reply = if s == self.id {
                Some(self.handle_query_message_local(&cmd).await)
            } else {
                self.forward(s, ctx, cmd.clone(), true).await
            };
            if let Some(r) = reply.filter(|r| r.code == rs::SUCCESS) {
                if let Some(b) = r.body {
                    body.extend_from_slice(&b);
                    found += 1;
                }
            }
        }
        if found == 0 {
            return response(
                &cmd,
                rs::QUERY_NOT_FOUND,
                "can not find message, maybe time range not correct".to_string(),
            );
        }
        let mut r = response(&cmd, rs::SUCCESS, None).with_body(body.freeze());
        r.set_ext("indexLastUpdateTimestamp", now_ms());
        r.set_ext("indexLastUpdatePhyoffset", 0);
        r
    }

    pub async fn handle_query_message_local(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let parsed = (|| {
            Ok::<_, crate::remoting::HeaderError>((
                cmd.ext_str("topic")?,
                cmd.ext_str("key")?,
                cmd.ext_i32_opt("maxNum")?.unwrap_or(32),
                cmd.ext_i64_opt("beginTimestamp")?.unwrap_or(0),
                cmd.ext_i64_opt("endTimestamp")?.unwrap_or(i64::MAX),
            ))
        })();
        let (topic, key, max, begin, end) = match parsed {
            Ok(x) => x,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad header: {e}")),
        };
        let max = (max.max(1) as usize).min(QUERY_MAX_MESSAGES);
        match self.store.query_by_key(topic, key, max, begin, end).await {
            Ok(found) if !found.is_empty() => {
                let mut body = BytesMut::new();
                found.iter().for_each(|m| body.extend_from_slice(m));
                response(cmd, rs::SUCCESS, None).with_body(body.freeze())
            }
            Ok(_) => response(cmd, rs::QUERY_NOT_FOUND, None),
            Err(e) => response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        }
    }

    pub async fn handle_view_message(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(offset) = cmd.ext_i64("offset") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing offset".to_string());
        };
        match self.store.read_message(offset).await {
            Ok(Some(rec)) => response(cmd, rs::SUCCESS, None).with_body(rec),
            Ok(None) => response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("no message at offset {offset}"),
            ),
            Err(e) => response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        }
    }

    /// GET_BROKER_CONFIG: the settings in force as Java's properties text
    /// (`key=value` lines), which mqadmin and the dashboard parse.
    pub fn handle_broker_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let mut text = String::new();
        for (k, v) in self.cfg().to_properties() {
            text.push_str(k);
            text.push('=');
            text.push_str(&v);
            text.push('\n');
        }
        response(cmd, rs::SUCCESS, None).with_body(text.into_bytes())
    }

    /// GET_BROKER_RUNTIME_INFO: sums every shard's counters.
    pub async fn handle_runtime_info(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: RemotingCommand,
    ) -> RemotingCommand {
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for s in 0..self.shards {
            let reply = if s == self.id {
                Some(self.handle_runtime_info_local(&cmd))
            } else {
                self.forward(s, ctx, cmd.clone(), true).await
            };
            let Some(body) = reply.and_then(|r| r.body) else {
                continue;
            };
            let Ok(kv) = decode_json::<KvTable>(&body) else {
                continue;
            };
            for (k, v) in kv.table {
                if let Ok(n) = v.parse::<i64>() {
                    *sums.entry(k).or_default() += n;
                }
            }
        }
        let mut table: BTreeMap<String, String> =
            sums.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        table.insert("brokerVersionDesc".into(), "V5_3_3".into());
        table.insert("brokerVersion".into(), version::SERVER_VERSION.to_string());
        table.insert("brokerActive".into(), "true".into());
        table.insert("bootTimestamp".into(), self.stats.boot_ms.get().to_string());
        table.insert("shards".into(), self.shards.to_string());
        // Tools parse it as a double outside any error handling: always set.
        let disk = rocketcore_storage::Environment::disk_used_ratio(
            &rocketcore_storage::SystemEnvironment,
            &self.cfg().store_dir,
        )
        .unwrap_or(0.0);
        table.insert("commitLogDiskRatio".into(), format!("{disk:.4}"));
        let body = serde_json::to_vec(&KvTable { table }).unwrap_or_default();
        response(&cmd, rs::SUCCESS, None).with_body(body)
    }

    pub fn handle_runtime_info_local(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let st = self.store.stats();
        let mut table = BTreeMap::new();
        table.insert(
            "msgPutTotalTodayNow".to_string(),
            self.stats.put_msgs.get().to_string(),
        );
        table.insert(
            "msgGetTotalTodayNow".to_string(),
            self.stats.get_msgs.get().to_string(),
        );
        table.insert(
            "requestsForwardedToOtherShards".to_string(),
            self.stats.forwarded.get().to_string(),
        );
        table.insert(
            "requestsFromClients".to_string(),
            self.stats.client_requests.get().to_string(),
        );
        table.insert(
            "commitLogBytesWritten".to_string(),
            st.write_pos.saturating_sub(st.min_offset).to_string(),
        );
        table.insert("pullsHeld".to_string(), self.polls.held().to_string());
        if let Some(acl) = &self.acl {
            table.insert("aclRefused".to_string(), acl.refused.get().to_string());
        }
        let body = serde_json::to_vec(&KvTable { table }).unwrap_or_default();
        response(cmd, rs::SUCCESS, None).with_body(body)
    }
}

/// SUCCESS once the config change is on disk; SYSTEM_ERROR saying so when
/// it is in effect but could not be written.
async fn durable_reply(
    cmd: &RemotingCommand,
    written: Option<crate::broker::file_writer::Written>,
) -> RemotingCommand {
    match written {
        Some(w) => match w.done().await {
            Ok(()) => response(cmd, rs::SUCCESS, None),
            Err(e) => response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("in effect until restart, but not saved: {e}"),
            ),
        },
        None => response(cmd, rs::SUCCESS, None),
    }
}
