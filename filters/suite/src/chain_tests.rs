//! The chain's request flow with fake stages that log what they see (run as wasm: no host call
//! is made, and one would trap).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use portcullis_common::stage;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::{ChainStream, Stage};

type Log = Rc<RefCell<Vec<String>>>;

/// What a fake stage does with the request headers.
#[derive(Clone, Copy)]
enum Then {
    Continue,
    Reply,
    /// Waits for the HTTP call with this token, and resumes when it is answered.
    Call(u32),
    /// Holds the headers and buffers the body until it ends (or trailers come).
    ReadBody,
}

struct Fake {
    id: usize,
    then: Then,
    reading: bool,
    log: Log,
}

impl Fake {
    fn note(&self, what: String) {
        self.log.borrow_mut().push(format!("{}:{what}", self.id));
    }
}

impl Context for Fake {
    fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
        self.note(format!("answer {token}"));
        stage::resume_request();
    }
}

impl HttpContext for Fake {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.note("headers".into());
        match self.then {
            Then::Continue => Action::Continue,
            Then::Reply => {
                stage::record_reply();
                Action::Pause
            }
            Then::Call(token) => {
                stage::record_call(token);
                Action::Pause
            }
            Then::ReadBody => {
                self.reading = true;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.note(format!("body {size} {end_of_stream}"));
        if self.reading && !end_of_stream {
            return Action::Pause;
        }
        self.reading = false;
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        self.note("trailers".into());
        self.reading = false;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.note("response".into());
        Action::Continue
    }

    fn on_log(&mut self) {
        self.note("log".into());
    }
}

thread_local! {
    static RESUMED: Cell<u32> = const { Cell::new(0) };
}

fn count_resume() {
    RESUMED.with(|r| r.set(r.get() + 1));
}

fn chain(stages: &[Then]) -> (ChainStream, Log) {
    RESUMED.with(|r| r.set(0));
    let log = Log::default();
    let stages = stages
        .iter()
        .enumerate()
        .map(|(id, &then)| Stage {
            instance: Rc::from(format!("stage{id}").as_str()),
            http: Box::new(Fake {
                id,
                then,
                reading: false,
                log: Rc::clone(&log),
            }),
            calls: Vec::new(),
        })
        .collect();
    (ChainStream::new(stages, count_resume), log)
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

#[test]
fn requests_go_through_in_order_and_responses_in_reverse() {
    let (mut c, log) = chain(&[Then::Continue, Then::Continue, Then::Continue]);
    assert_eq!(c.on_http_request_headers(0, true), Action::Continue);
    assert_eq!(taken(&log), ["0:headers", "1:headers", "2:headers"]);
    assert_eq!(c.on_http_response_headers(0, true), Action::Continue);
    assert_eq!(taken(&log), ["2:response", "1:response", "0:response"]);
    c.on_log();
    assert_eq!(taken(&log), ["0:log", "1:log", "2:log"]);
}

#[test]
fn a_local_reply_ends_the_request_for_the_later_stages() {
    let (mut c, log) = chain(&[Then::Continue, Then::Reply, Then::Continue]);
    assert_eq!(c.on_http_request_headers(0, false), Action::Pause);
    assert_eq!(taken(&log), ["0:headers", "1:headers"]);
    assert_eq!(c.on_http_request_body(5, true), Action::Pause);
    assert!(taken(&log).is_empty());
    // The reply's response reaches only the stages that saw the request.
    c.on_http_response_headers(0, false);
    assert_eq!(taken(&log), ["1:response", "0:response"]);
    // on_log reaches all: the record is written for a denied request too.
    c.on_log();
    assert_eq!(taken(&log), ["0:log", "1:log", "2:log"]);
}

#[test]
fn body_and_trailers_wait_with_the_request_for_an_http_call() {
    let (mut c, log) = chain(&[Then::Continue, Then::Call(7), Then::ReadBody]);
    assert_eq!(c.on_http_request_headers(0, false), Action::Pause);
    assert_eq!(c.on_http_request_body(4, false), Action::Pause);
    assert_eq!(c.on_http_request_body(10, false), Action::Pause);
    assert_eq!(c.on_http_request_trailers(1), Action::Pause);
    assert_eq!(taken(&log), ["0:headers", "1:headers"]);
    // An answer nobody waits for changes nothing.
    c.on_http_call_response(8, 0, 0, 0);
    assert!(taken(&log).is_empty());
    c.on_http_call_response(7, 0, 0, 0);
    // The later stage sees the headers, then every stage the whole body (the last callback's
    // size counts it all) and the trailers; then Envoy is told to resume, once.
    assert_eq!(
        taken(&log),
        [
            "1:answer 7",
            "2:headers",
            "0:body 10 false",
            "0:trailers",
            "1:body 10 false",
            "1:trailers",
            "2:body 10 false",
            "2:trailers",
        ]
    );
    assert_eq!(RESUMED.with(Cell::get), 1);
}

#[test]
fn a_body_reader_holds_the_later_stages_until_the_body_ends() {
    let (mut c, log) = chain(&[Then::Continue, Then::ReadBody, Then::Continue]);
    assert_eq!(c.on_http_request_headers(0, false), Action::Pause);
    assert_eq!(c.on_http_request_body(4, false), Action::Pause);
    assert_eq!(c.on_http_request_body(9, true), Action::Continue);
    assert_eq!(
        taken(&log),
        [
            "0:headers",
            "1:headers",
            "0:body 4 false",
            "1:body 4 false",
            "0:body 9 true",
            "1:body 9 true",
            "2:headers",
            "2:body 9 true",
        ]
    );
    assert_eq!(RESUMED.with(Cell::get), 0);
}

#[test]
fn a_reader_released_by_trailers_gives_the_next_reader_the_body_first() {
    let (mut c, log) = chain(&[Then::Continue, Then::ReadBody, Then::ReadBody]);
    assert_eq!(c.on_http_request_headers(0, false), Action::Pause);
    assert_eq!(c.on_http_request_body(9, false), Action::Pause);
    assert_eq!(c.on_http_request_trailers(1), Action::Continue);
    assert_eq!(
        taken(&log),
        [
            "0:headers",
            "1:headers",
            "0:body 9 false",
            "1:body 9 false",
            "0:trailers",
            "1:trailers",
            "2:headers",
            "2:body 9 false",
            "2:trailers",
        ]
    );
}
