//! The web console on a server's HTTP port: static pages embedded in the
//! binary (no build step anywhere) and one JSON endpoint that runs an
//! admin verb. The console is an admin client like `rocketcore admin`: it
//! speaks Remoting to the name server and the brokers it names, through
//! the same verb functions, so the two can never disagree.
//!
//! Verbs run on a short-lived thread each (they block on sockets), never on
//! a shard's executor; at most `MAX_RUNNING` at once. Verbs that change the
//! cluster (`admin::WRITE_VERBS`) need the `consoleAdminPassword` in the
//! `X-Admin-Password` header; without a configured password the console is
//! read-only. A header, not a cookie, so another site cannot make a
//! visitor's browser send it (no CSRF).

use std::cell::Cell;
use std::net::SocketAddr;

use clap::Parser;
use serde_json::{json, Value};

use crate::admin::{Session, Verb, WRITE_VERBS};
use crate::net::blocking::Link;
use crate::net::http::{Request, Response};

/// Verbs running at once; more are answered 503.
const MAX_RUNNING: usize = 4;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const JSON: &str = "application/json";

pub struct Console {
    namesrv: SocketAddr,
    link: Link,
    password: Option<String>,
    /// Shown in the page header: which process serves it.
    node: String,
    running: Cell<usize>,
}

/// One verb line, as `rocketcore admin` would parse it.
#[derive(Parser, Debug)]
#[command(name = "admin", no_binary_name = true, disable_help_subcommand = true)]
struct Line {
    #[command(subcommand)]
    verb: Verb,
}

impl Console {
    pub fn new(namesrv: SocketAddr, link: Link, password: Option<String>, node: String) -> Console {
        Console {
            namesrv,
            link,
            password: password.filter(|p| !p.is_empty()),
            node,
            running: Cell::new(0),
        }
    }

    pub async fn answer(&self, req: Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/" | "/index.html") => {
                Response::new("200 OK", "text/html; charset=utf-8", INDEX_HTML)
            }
            ("GET", "/app.js") => Response::new("200 OK", "text/javascript; charset=utf-8", APP_JS),
            ("GET", "/style.css") => Response::new("200 OK", "text/css; charset=utf-8", STYLE_CSS),
            ("GET", "/api/v1/info") => json_response(
                "200 OK",
                json!({"node": self.node, "namesrv": self.namesrv.to_string(),
                    "writable": self.password.is_some(), "writeVerbs": WRITE_VERBS}),
            ),
            ("POST", "/api/v1/admin") => self.admin(req).await,
            (_, "/api/v1/admin") => Response::text(
                "405 Method Not Allowed",
                "POST a JSON body {\"args\": [verb, flags…]}\n",
            ),
            _ => Response::text(
                "404 Not Found",
                "not found: the console is at /, metrics at /metrics\n",
            ),
        }
    }

    async fn admin(&self, req: Request) -> Response {
        let fail =
            |status, error: String| json_response(status, json!({"ok": false, "error": error}));
        if !req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            return fail(
                "415 Unsupported Media Type",
                "send Content-Type: application/json".into(),
            );
        }
        let args = match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => match v.get("args").and_then(Value::as_array) {
                Some(a) if a.iter().all(Value::is_string) && !a.is_empty() => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect::<Vec<_>>(),
                _ => {
                    return fail(
                        "400 Bad Request",
                        "expected {\"args\": [verb, flags…]}, all strings".into(),
                    )
                }
            },
            Err(e) => return fail("400 Bad Request", format!("body is not JSON: {e}")),
        };
        let verb = args[0].clone();
        let line = match Line::try_parse_from(&args) {
            Ok(l) => l,
            Err(e) => return fail("400 Bad Request", e.render().to_string()),
        };
        let writes = WRITE_VERBS.contains(&verb.as_str());
        if writes {
            match &self.password {
                None => {
                    return fail(
                        "403 Forbidden",
                        "this console is read-only: set consoleAdminPassword to allow changes"
                            .into(),
                    )
                }
                Some(p) if !same(p, req.header("x-admin-password").unwrap_or("")) => {
                    return fail("401 Unauthorized", "wrong or missing admin password".into())
                }
                Some(_) => {}
            }
        }
        if self.running.get() >= MAX_RUNNING {
            return fail(
                "503 Service Unavailable",
                format!("{MAX_RUNNING} console requests are running; try again"),
            );
        }
        // Counted down on drop: the HTTP timeout may cancel this future.
        struct Running<'a>(&'a Cell<usize>);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        self.running.set(self.running.get() + 1);
        let _running = Running(&self.running);
        let result = self.run(line.verb).await;
        match result {
            Ok((value, text)) => {
                if writes {
                    tracing::info!(command = args.join(" "), "console: change made");
                }
                json_response("200 OK", json!({"ok": true, "result": value, "text": text}))
            }
            Err(e) => fail("422 Unprocessable Entity", e),
        }
    }

    /// Runs `verb` on its own thread; the shard's executor waits without blocking.
    async fn run(&self, verb: Verb) -> Result<(Value, String), String> {
        let (tx, rx) = flume::bounded(1);
        let (namesrv, link) = (self.namesrv, self.link.clone());
        std::thread::Builder::new()
            .name("console-verb".into())
            .spawn(move || {
                let session = Session::new(namesrv, link);
                let result = crate::admin::run_verb(&session, verb).map(|()| {
                    let mut out = session.take_output();
                    match out.len() {
                        1 => out.remove(0),
                        _ => {
                            let text = out
                                .iter()
                                .map(|(_, t)| t.as_str())
                                .collect::<Vec<_>>()
                                .join("\n");
                            (
                                Value::Array(out.into_iter().map(|(v, _)| v).collect()),
                                text,
                            )
                        }
                    }
                });
                let _ = tx.send(result);
            })
            .map_err(|e| format!("cannot start a thread for the verb: {e}"))?;
        rx.recv_async()
            .await
            .map_err(|_| "the verb's thread ended without an answer".to_string())?
    }
}

/// Equal strings, compared in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_response(status: &'static str, value: Value) -> Response {
    Response::new(status, JSON, serde_json::to_vec(&value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_lines_parse_as_the_cli_parses_them() {
        let l = Line::try_parse_from(["topicStatus", "-t", "T"]).unwrap();
        assert!(matches!(l.verb, Verb::TopicStatus { topic } if topic == "T"));
        assert!(Line::try_parse_from(["topicStatus"]).is_err());
        assert!(Line::try_parse_from(["noSuchVerb"]).is_err());
    }

    #[test]
    fn passwords_compare_whole() {
        assert!(same("secret", "secret"));
        assert!(!same("secret", "secreT"));
        assert!(!same("secret", "secret2"));
        assert!(!same("", "x"));
    }
}
