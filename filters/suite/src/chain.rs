//! A `chain` instance: several filters run as stages of one Envoy filter, in the order of its
//! configuration ([`crate::chain_config`]). Each Envoy filter costs every request a round of VM
//! callbacks whether it does anything or not; a chain pays that once for all its stages.
//!
//! Each stage sees what it would see as its own Envoy filter at that place in the chain:
//! request callbacks in order, response callbacks in reverse order, `on_log` and `on_done` for
//! all. A stage that pauses the request holds every later stage, as Envoy would:
//! - after a local reply, no later stage sees the request;
//! - while it waits for an HTTP call, the request body is held (Envoy buffers it) and is given
//!   to the stages, in order, once the stage resumes;
//! - while it reads the request body, the stages before it see each body callback too; when it
//!   lets the request go on, the later stages see the headers and then the body so far.
//!
//! The stages share the chain's context ids, so their host calls (headers, body, properties,
//! local replies) act on the chain's stream; the few that belong to the Envoy filter as a whole
//! go through `portcullis_common::stage`, which this module answers per stage. What the stages
//! publish for each other (identity, decisions) stays in the stream, not in Envoy's filter state.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use portcullis_common::host;
use portcullis_common::stage::{self, Published, Scope};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::chain_config;

pub fn root() -> Box<dyn RootContext> {
    Box::new(ChainRoot {
        stages: Vec::new(),
        tick_ms: 0,
    })
}

struct StageRoot {
    instance: Rc<str>,
    root: Box<dyn RootContext>,
    /// The tick period the stage asked for, and when its next tick is due (ms since the epoch).
    tick: Option<(u64, u64)>,
    /// Root-level HTTP calls the stage is waiting for.
    calls: HashSet<u32>,
}

impl StageRoot {
    /// Runs one callback of the stage's root context and keeps what it asked for.
    fn call<R>(&mut self, f: impl FnOnce(&mut dyn RootContext) -> R) -> R {
        self.call_with(None, f)
    }

    fn call_with<R>(
        &mut self,
        configuration: Option<Rc<[u8]>>,
        f: impl FnOnce(&mut dyn RootContext) -> R,
    ) -> R {
        let scope = Scope {
            instance: Rc::clone(&self.instance),
            configuration,
            ..Scope::default()
        };
        let root = &mut self.root;
        let (result, scope) = stage::within(scope, || f(root.as_mut()));
        if let Some(period) = scope.tick {
            // A period of 0 stops the ticks, as it does for an Envoy filter.
            let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
            self.tick = (ms > 0).then(|| (ms, host::now_ms().saturating_add(ms)));
        }
        self.calls.extend(scope.calls);
        result
    }
}

struct ChainRoot {
    stages: Vec<StageRoot>,
    /// The host tick period: the shortest any stage asked for.
    tick_ms: u64,
}

impl Context for ChainRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        if let Some(s) = self.stages.iter_mut().find(|s| s.calls.contains(&token)) {
            s.calls.remove(&token);
            s.call(|r| r.on_http_call_response(token, headers, body, trailers));
        }
    }

    fn on_done(&mut self) -> bool {
        // Every stage hears it; the chain is done when all of them are.
        let mut done = true;
        for s in &mut self.stages {
            done &= s.call(|r| r.on_done());
        }
        done
    }
}

impl RootContext for ChainRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log::info!("portcullis chain {} started", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let specs = match chain_config::parse(&stage::plugin_configuration()) {
            Ok(specs) => specs,
            Err(e) => {
                log::error!("chain: {e}");
                return false;
            }
        };
        let mut stages = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let Some(root) = crate::filter_root(spec.filter) else {
                return false; // chain_config refuses a chain as a stage
            };
            let mut s = StageRoot {
                instance: Rc::from(spec.instance.as_str()),
                root,
                tick: None,
                calls: HashSet::new(),
            };
            let size = spec.config.len();
            let config: Rc<[u8]> = Rc::from(spec.config);
            let ok = s.call_with(Some(config), |r| r.on_vm_start(0) && r.on_configure(size));
            if !ok {
                log::error!(
                    "chain: stages[{i}].config: the {} stage refused its configuration (its \
                     message is above)",
                    spec.instance
                );
                return false;
            }
            stages.push(s);
        }
        if let Some(period) = stages.iter().filter_map(|s| s.tick.map(|t| t.0)).min() {
            self.tick_ms = period;
            let _ = hostcalls::set_tick_period(Duration::from_millis(period));
        }
        self.stages = stages;
        true
    }

    /// Ticks at the shortest period any stage asked for; each stage's tick comes when it is due
    /// (within half a host tick, so timer jitter does not skip one), and a clock that stepped
    /// back does not hold it off.
    fn on_tick(&mut self) {
        let now = host::now_ms();
        let slack = self.tick_ms / 2;
        for s in &mut self.stages {
            if let Some((period, due)) = s.tick {
                let stepped_back = due > now.saturating_add(period.saturating_mul(2));
                if now.saturating_add(slack) >= due || stepped_back {
                    let next = due.saturating_add(period);
                    let next = if next <= now || stepped_back {
                        now.saturating_add(period)
                    } else {
                        next
                    };
                    s.tick = Some((period, next));
                    s.call(|r| r.on_tick());
                }
            }
        }
    }

    fn on_queue_ready(&mut self, queue: u32) {
        for s in &mut self.stages {
            s.call(|r| r.on_queue_ready(queue));
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let mut stages = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            stages.push(Stage {
                instance: Rc::clone(&s.instance),
                http: s.root.create_http_context(context_id)?,
                calls: Vec::new(),
            });
        }
        Some(Box::new(ChainStream::new(stages, resume_host_request)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stage {
    instance: Rc<str>,
    http: Box<dyn HttpContext>,
    /// HTTP calls of this request the stage is waiting for.
    calls: Vec<u32>,
}

/// What the stage at `next` holds the request for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// An HTTP call it made.
    Call,
    /// The request body.
    Body,
    /// It sent a local reply: the request goes no further.
    Replied,
}

/// A part of the request that follows the headers.
#[derive(Clone, Copy, Debug)]
enum Data {
    Body { size: usize, end_of_stream: bool },
    Trailers { count: usize },
}

struct ChainStream {
    stages: Vec<Stage>,
    /// The first stage that has not let the request headers go on.
    next: usize,
    wait: Wait,
    /// Whether the request ended with its headers.
    end_of_stream: bool,
    /// The last body callback and the trailers that arrived while a stage waited for an HTTP
    /// call, and the first stage that has not seen them.
    held_body: Option<Data>,
    held_trailers: Option<Data>,
    held_from: usize,
    /// The last body callback (its size counts the whole body so far).
    last_body: Option<(usize, bool)>,
    /// What the stages published for this request (`stage::publish`).
    published: Published,
    /// Lets Envoy resume the request (a fake in tests).
    resume_host: fn(),
}

fn resume_host_request() {
    let _ = hostcalls::resume_http_request();
}

impl ChainStream {
    fn new(stages: Vec<Stage>, resume_host: fn()) -> ChainStream {
        ChainStream {
            stages,
            next: 0,
            wait: Wait::Nothing,
            end_of_stream: false,
            held_body: None,
            held_trailers: None,
            held_from: usize::MAX,
            last_body: None,
            published: Published::default(),
            resume_host,
        }
    }

    /// Runs one callback of stage `i`; returns its action and what it asked for.
    fn call(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut dyn HttpContext) -> Action,
    ) -> (Action, Scope) {
        let stage = &mut self.stages[i];
        let scope = Scope {
            instance: Rc::clone(&stage.instance),
            published: Some(Rc::clone(&self.published)),
            ..Scope::default()
        };
        let http = &mut stage.http;
        let (action, scope) = stage::within(scope, || f(http.as_mut()));
        stage.calls.extend_from_slice(&scope.calls);
        (action, scope)
    }

    /// Gives the request headers to the stages from `next` on, until one holds them.
    fn advance(&mut self) -> Action {
        while self.next < self.stages.len() {
            let end = self.end_of_stream;
            let (action, scope) = self.call(self.next, |h| h.on_http_request_headers(0, end));
            if scope.replied {
                self.wait = Wait::Replied;
                return Action::Pause;
            }
            if action != Action::Continue {
                self.wait = if scope.calls.is_empty() {
                    Wait::Body
                } else {
                    Wait::Call
                };
                return Action::Pause;
            }
            self.next += 1;
        }
        self.wait = Wait::Nothing;
        Action::Continue
    }

    /// Gives a body callback or the trailers to the stages that have seen the headers (and to
    /// the one reading the body), then, if that one lets the request go on, to the later ones.
    fn data(&mut self, data: Data) -> Action {
        if let Data::Body {
            size,
            end_of_stream,
        } = data
        {
            self.last_body = Some((size, end_of_stream));
        }
        self.deliver(vec![data], 0)
    }

    /// Gives `parts` (a body callback, the trailers, or both) to the stages from `from` on: up
    /// to the one reading the body, or to all of them. A stage's answer is its answer to the
    /// last part.
    fn deliver(&mut self, mut parts: Vec<Data>, mut from: usize) -> Action {
        loop {
            match self.wait {
                Wait::Replied => return Action::Pause,
                Wait::Call => {
                    // Held for the stages from `from` on. A body callback's size counts
                    // everything so far, so the last one stands for all before it.
                    self.held_from = self.held_from.min(from);
                    for part in parts {
                        match part {
                            Data::Body { .. } => self.held_body = Some(part),
                            Data::Trailers { .. } => self.held_trailers = Some(part),
                        }
                    }
                    return Action::Pause;
                }
                Wait::Body | Wait::Nothing => {}
            }
            let upto = match self.wait {
                Wait::Body => self.next + 1,
                _ => self.stages.len(),
            };
            for i in from..upto {
                let mut action = Action::Continue;
                for part in &parts {
                    let (a, scope) = self.call(i, |h| match *part {
                        Data::Body {
                            size,
                            end_of_stream,
                        } => h.on_http_request_body(size, end_of_stream),
                        Data::Trailers { count } => h.on_http_request_trailers(count),
                    });
                    if scope.replied {
                        self.wait = Wait::Replied;
                        return Action::Pause;
                    }
                    action = a;
                }
                if action != Action::Continue {
                    // A stage buffers: the next callback brings everything so far.
                    return Action::Pause;
                }
            }
            if self.wait != Wait::Body {
                return Action::Continue;
            }
            // The reader lets the request go on: the later stages see the headers, then the body
            // so far (Envoy buffered it for the reader), then this.
            self.next += 1;
            from = self.next;
            self.advance();
            if let (Some((size, _)), [Data::Trailers { .. }]) = (self.last_body, parts.as_slice()) {
                parts.insert(
                    0,
                    Data::Body {
                        size,
                        end_of_stream: false,
                    },
                );
            }
        }
    }

    /// Response callbacks go in reverse order to the stages that saw the request (as Envoy
    /// skips a filter whose request callback never ran), until one holds the response.
    fn respond(&mut self, f: impl Fn(&mut dyn HttpContext) -> Action) -> Action {
        let reached = (self.next + 1).min(self.stages.len());
        for i in (0..reached).rev() {
            let (action, _) = self.call(i, &f);
            if action != Action::Continue {
                return action;
            }
        }
        Action::Continue
    }

    /// After a stage's HTTP call is answered and it asked to resume: the later stages see the
    /// request, then what arrived meanwhile; Envoy resumes it when every stage lets it go on.
    fn resume(&mut self) {
        self.next += 1;
        let mut action = self.advance();
        let held: Vec<Data> = [self.held_body.take(), self.held_trailers.take()]
            .into_iter()
            .flatten()
            .collect();
        if !held.is_empty() {
            let from = std::mem::replace(&mut self.held_from, usize::MAX);
            action = self.deliver(held, from);
        }
        if action == Action::Continue {
            (self.resume_host)();
        }
    }
}

impl Context for ChainStream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        let Some(i) = self.stages.iter().position(|s| s.calls.contains(&token)) else {
            return;
        };
        self.stages[i].calls.retain(|t| *t != token);
        let (_, scope) = self.call(i, |h| {
            h.on_http_call_response(token, headers, body, trailers);
            Action::Continue
        });
        if scope.replied {
            self.wait = Wait::Replied;
        } else if scope.resumed && i == self.next && self.wait == Wait::Call {
            self.resume();
        } else if !scope.calls.is_empty() && i == self.next && self.wait == Wait::Call {
            // Still waiting, now for the next call.
            self.wait = Wait::Call;
        }
    }

    fn on_done(&mut self) -> bool {
        for i in 0..self.stages.len() {
            self.call(i, |h| {
                h.on_done();
                Action::Continue
            });
        }
        true
    }
}

impl HttpContext for ChainStream {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        self.end_of_stream = end_of_stream;
        self.advance()
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.data(Data::Body {
            size,
            end_of_stream,
        })
    }

    fn on_http_request_trailers(&mut self, count: usize) -> Action {
        self.data(Data::Trailers { count })
    }

    fn on_http_response_headers(&mut self, count: usize, end_of_stream: bool) -> Action {
        self.respond(|h| h.on_http_response_headers(count, end_of_stream))
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.respond(|h| h.on_http_response_body(size, end_of_stream))
    }

    fn on_http_response_trailers(&mut self, count: usize) -> Action {
        self.respond(|h| h.on_http_response_trailers(count))
    }

    fn on_log(&mut self) {
        for i in 0..self.stages.len() {
            self.call(i, |h| {
                h.on_log();
                Action::Continue
            });
        }
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
