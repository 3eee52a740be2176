//! Queue offsets on the owning shard: consumer offsets (14, 15), max/min
//! offset (30, 31), offset by time (29), earliest store time (32).

use std::rc::Rc;

use crate::broker::shard::{response, Shard};
use crate::remoting::codes::response_code as rs;
use crate::remoting::{HeaderError, RemotingCommand};

fn bad(cmd: &RemotingCommand, e: HeaderError) -> RemotingCommand {
    response(cmd, rs::SYSTEM_ERROR, format!("bad request header: {e}"))
}

impl Shard {
    fn queue_of<'a>(&self, cmd: &'a RemotingCommand) -> Result<(&'a str, i32), HeaderError> {
        Ok((cmd.ext_str("topic")?, cmd.ext_i32("queueId")?))
    }

    pub fn handle_query_consumer_offset(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let (group, (topic, qid)) = match cmd
            .ext_str("consumerGroup")
            .and_then(|g| Ok((g, self.queue_of(cmd)?)))
        {
            Ok(x) => x,
            Err(e) => return bad(cmd, e),
        };
        let stored = self.offsets.borrow().get(group, topic, qid);
        let offset = match stored {
            Some(o) => Some(o),
            // No offset yet: Java answers 0 when the queue was never
            // truncated, unless the client asked not to (spec §2.4, §13.19).
            None if cmd.ext_bool_opt("setZeroIfNotFound") != Some(false)
                && self.store.min_offset(topic, qid) == 0 =>
            {
                Some(0)
            }
            None => None,
        };
        match offset {
            Some(o) => {
                let mut r = response(cmd, rs::SUCCESS, None);
                r.set_ext("offset", o);
                r
            }
            None => response(
                cmd,
                rs::QUERY_NOT_FOUND,
                "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first".to_string(),
            ),
        }
    }

    pub fn handle_update_consumer_offset(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let parsed = cmd
            .ext_str("consumerGroup")
            .and_then(|g| Ok((g, self.queue_of(cmd)?, cmd.ext_i64("commitOffset")?)));
        let (group, (topic, qid), offset) = match parsed {
            Ok(x) => x,
            Err(e) => return bad(cmd, e),
        };
        if self.meta().topic(topic).is_none() {
            return response(
                cmd,
                rs::TOPIC_NOT_EXIST,
                format!("topic[{topic}] not exist"),
            );
        }
        if self.stopping.get() {
            return response(
                cmd,
                rs::SERVICE_NOT_AVAILABLE,
                "broker is shutting down".to_string(),
            );
        }
        self.offsets.borrow_mut().set(group, topic, qid, offset);
        response(cmd, rs::SUCCESS, None)
    }

    pub fn handle_get_max_offset(&self, cmd: &RemotingCommand) -> RemotingCommand {
        match self.queue_of(cmd) {
            Ok((topic, qid)) => {
                let mut r = response(cmd, rs::SUCCESS, None);
                r.set_ext("offset", self.store.max_offset(topic, qid));
                r
            }
            Err(e) => bad(cmd, e),
        }
    }

    pub fn handle_get_min_offset(&self, cmd: &RemotingCommand) -> RemotingCommand {
        match self.queue_of(cmd) {
            Ok((topic, qid)) => {
                let mut r = response(cmd, rs::SUCCESS, None);
                r.set_ext("offset", self.store.min_offset(topic, qid));
                r
            }
            Err(e) => bad(cmd, e),
        }
    }

    pub async fn handle_search_offset(self: &Rc<Self>, cmd: &RemotingCommand) -> RemotingCommand {
        let (topic, qid, ts) = match self
            .queue_of(cmd)
            .and_then(|(t, q)| Ok((t, q, cmd.ext_i64("timestamp")?)))
        {
            Ok(x) => x,
            Err(e) => return bad(cmd, e),
        };
        let upper = cmd
            .ext_str_opt("boundaryType")
            .is_some_and(|b| b.eq_ignore_ascii_case("UPPER"));
        let found = if upper {
            // Last message stored at or before `ts`.
            self.store
                .offset_by_time(topic, qid, ts.saturating_add(1))
                .await
                .map(|o| o.saturating_sub(1).max(self.store.min_offset(topic, qid)))
        } else {
            self.store.offset_by_time(topic, qid, ts).await
        };
        match found {
            Ok(o) => {
                let mut r = response(cmd, rs::SUCCESS, None);
                r.set_ext("offset", o);
                r
            }
            Err(e) => response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        }
    }

    pub async fn handle_earliest_store_time(
        self: &Rc<Self>,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let (topic, qid) = match self.queue_of(cmd) {
            Ok(x) => x,
            Err(e) => return bad(cmd, e),
        };
        let min = self.store.min_offset(topic, qid);
        match self.store.store_time(topic, qid, min).await {
            Ok(Some(t)) => {
                let mut r = response(cmd, rs::SUCCESS, None);
                r.set_ext("timestamp", t);
                r
            }
            Ok(None) => response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("no message in {topic}:{qid}"),
            ),
            Err(e) => response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        }
    }
}
