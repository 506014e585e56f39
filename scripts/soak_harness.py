#!/usr/bin/env python3
"""`make soak` and `make faults` (docs/reliability.md): the demo chain under sustained load and
under injected faults, judged on what must not be lost.

    soak_harness.py soak     # saturation ramp, then SOAK_MINUTES at 70 % of it (then faults
                             # too with SOAK_FAULTS=1)
    soak_harness.py faults   # each fault in turn, during a shorter, lighter load

Everything runs on loopback, on ports of its own (28xxx, so a `make run` or `make load` on the
usual ports is left alone), under .dev/soak/<mode>/; every process the harness starts is stopped
when it ends, whatever happens, and every wait is bounded. Exit status 0 only when every check
passed; the figures are printed and written to .dev/soak/<mode>/report.json.

The chain is the `make run` chain as `make load` renders it (k6/README.md: the load rate limits,
everything else the demo config), with the audit filter's HTTP sink pointed at
scripts/soak_collector.py. Stdlib only: it runs under the repo's .venv python.
"""

import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K6 = os.path.join(ROOT, ".venv/bin/k6")
ENVOY = os.path.join(ROOT, ".venv/bin/envoy")
UPSTREAM = os.path.join(ROOT, "target/debug/portcullis-demo-upstream")
DEVKIT = os.path.join(ROOT, "target/debug/portcullis-devkit")
VERIFY = os.path.join(ROOT, "target/debug/portcullis-audit-verify")
CA = os.path.join(ROOT, ".dev/certs/ca.crt")
PY = sys.executable

PORTS = {"HTTPS_PORT": 28443, "HTTPS_PUBLIC_PORT": 28443, "HTTP_PORT": 28080,
         "ADMIN_PORT": 28901, "UPSTREAM_PORT": 28000, "AUDIT_COLLECTOR_PORT": 28099,
         "AUTH_IDP_PORT": 28098}
BASE = f"https://localhost:{PORTS['HTTPS_PORT']}"
ADMIN = f"http://127.0.0.1:{PORTS['ADMIN_PORT']}"


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{name}={os.environ.get(name)!r}: expected a whole number")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the chain ------------------------------------------------------------------------------

class Chain:
    """Upstream, collector, JWKS server and Envoy, each startable and stoppable on its own."""

    def __init__(self, out, audit, auth=None, ratelimit_client=None, sets=()):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.procs = {}
        self.audit = audit
        self.auth = auth
        self.ratelimit_client = ratelimit_client
        self.sets = list(sets)
        self.collector_dir = os.path.join(out, "collector")

    def write(self, name, value):
        path = os.path.join(self.out, name)
        with open(path, "w") as f:
            json.dump(value, f, indent=1)
        return path

    def render(self):
        cmd = [DEVKIT, "render", "--out", os.path.join(self.out, "envoy.yaml")]
        for k, v in PORTS.items():
            cmd += ["--set", f"{k}={v}"]
        cmd += ["--set", f"LAYOUT={os.environ.get('LAYOUT', 'filters')}"]
        for s in self.sets:
            cmd += ["--set", s]
        configs = {
            "ratelimit-client": self.ratelimit_client or os.path.join(ROOT, "k6/config/ratelimit-client.json"),
            "ratelimit-identity": os.path.join(ROOT, "k6/config/ratelimit-identity.json"),
            "audit": self.write("audit.json", self.audit),
        }
        if self.auth:
            configs["auth"] = self.write("auth.json", self.auth)
        for instance, path in configs.items():
            cmd += ["--filter-config", f"{instance}={path}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def start(self, name, cmd, env=None):
        logf = open(os.path.join(self.out, f"{name}.log"), "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True, cwd=ROOT)

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def start_upstream(self):
        self.start("upstream", [UPSTREAM, "--listen", f"127.0.0.1:{PORTS['UPSTREAM_PORT']}"])
        wait_for(lambda: port_open(PORTS["UPSTREAM_PORT"]), 10, "the demo upstream")

    def start_collector(self):
        self.start("collector", [PY, os.path.join(ROOT, "scripts/soak_collector.py"), "collect",
                                 "--port", str(PORTS["AUDIT_COLLECTOR_PORT"]), "--dir", self.collector_dir])
        wait_for(lambda: port_open(PORTS["AUDIT_COLLECTOR_PORT"]), 10, "the audit collector")

    def start_jwks(self, path):
        self.start("jwks", [PY, os.path.join(ROOT, "scripts/soak_collector.py"), "serve",
                            "--port", str(PORTS["AUTH_IDP_PORT"]), "--file", path])
        wait_for(lambda: port_open(PORTS["AUTH_IDP_PORT"]), 10, "the JWKS server")

    def start_envoy(self):
        env = dict(os.environ)
        with open(os.path.join(ROOT, ".dev/demo-jwt-secret")) as f:
            env["PORTCULLIS_JWT_SECRET"] = f.read().strip()
        self.start("envoy", [ENVOY, "-c", os.path.join(self.out, "envoy.yaml"),
                             "--disable-hot-restart", "--concurrency", "2", "--log-level", "warn",
                             "--component-log-level", "wasm:info",
                             "--base-id", str(PORTS["ADMIN_PORT"])], env=env)
        wait_for(lambda: http_status(f"{ADMIN}/ready") == 200, 180, "Envoy")
        wait_for(lambda: https_get("/healthz")[0] == 200, 30, "the chain")

    def envoy_pid(self):
        return self.procs["envoy"].pid

    def rss_kb(self):
        with open(f"/proc/{self.envoy_pid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stats(self):
        """`portcullis_*` and a few Envoy counters from /stats/prometheus, summed over labels."""
        text = urllib.request.urlopen(f"{ADMIN}/stats/prometheus", timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
            if not m:
                continue
            name, labels, value = m.groups()
            if name.startswith("portcullis_") or (
                    name.startswith("envoy_http_downstream_rq") and 'prefix="https"' in (labels or "")):
                try:
                    out[name] = out.get(name, 0) + float(value)
                except ValueError:
                    pass
        return out

    def collector_counts(self):
        path = os.path.join(self.collector_dir, "counts.json")
        if not os.path.exists(path):
            return {"records": 0, "dropped_reported": 0, "batches": 0, "duplicates": 0, "bad_batches": 0}
        with open(path) as f:
            return json.load(f)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(cond, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {seconds}s")


def http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except Exception:
        return 0


TLS = ssl.create_default_context(cafile=CA)


def https_get(path, headers=None, timeout=20):
    """(status, content-type, body, seconds) of one request to the chain; status 0 on error."""
    req = urllib.request.Request(BASE + path, headers=headers or {})
    t = time.time()
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=TLS) as r:
            return r.status, r.headers.get("content-type", ""), r.read(), time.time() - t
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read(), time.time() - t
    except Exception as e:  # connection refused, timeout: the caller judges
        return 0, "", str(e).encode(), time.time() - t


def tokens(out):
    """DEMO-ONLY HS256 tokens for the k6 mix, in a file k6 reads (never on a command line)."""
    toks = {}
    for role in ("viewer", "editor", "admin"):
        toks[role] = subprocess.run([DEVKIT, "token", "--role", role, "--sub", f"soak-{role}",
                                     "--ttl", "7200"], check=True, capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip()
    path = os.path.join(out, "tokens.json")
    with open(path, "w") as f:
        json.dump(toks, f)
    return path, toks


def k6(out, name, rate, duration, script="k6/soak.js", extra=None, background=False):
    summary = os.path.join(out, f"k6-{name}.json")
    env = dict(os.environ, SSL_CERT_FILE=CA, TOKENS_FILE=os.path.join(out, "tokens.json"),
               BASE_URL=BASE, RATE=str(rate), DURATION=duration, **(extra or {}))
    cmd = [K6, "run", "--quiet", "--no-usage-report", "--summary-export", summary,
           os.path.join(ROOT, script)]
    logf = open(os.path.join(out, f"k6-{name}.log"), "wb")
    p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT,
                         start_new_session=True)
    if background:
        return p, summary
    p.wait()
    return read_summary(summary)


def read_summary(path):
    with open(path) as f:
        m = json.load(f)["metrics"]
    dur = m.get("http_req_duration", {})
    return {
        "requests": int(m.get("http_reqs", {}).get("count", 0)),
        "rps": round(m.get("http_reqs", {}).get("rate", 0), 1),
        "failed_rate": m.get("http_req_failed", {}).get("value", 0),
        "failed": int(m.get("http_req_failed", {}).get("passes", 0)),
        "dropped_iterations": int(m.get("dropped_iterations", {}).get("count", 0)),
        "server_5xx": int(m.get("server_5xx", {}).get("count", 0)),
        "problem_503": int(m.get("problem_503", {}).get("count", 0)),
        "p50_ms": round(dur.get("med", 0), 2),
        "p95_ms": round(dur.get("p(95)", 0), 2),
        "p99_ms": round(dur.get("p(99)", 0), 2),
        "max_ms": round(dur.get("max", 0), 2),
    }


class Report:
    def __init__(self, out):
        self.out = out
        self.figures = {}
        self.checks = []

    def check(self, name, ok, detail):
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        log(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    def save(self):
        with open(os.path.join(self.out, "report.json"), "w") as f:
            json.dump({"figures": self.figures, "checks": self.checks}, f, indent=1)

    def ok(self):
        return all(c["ok"] for c in self.checks)


def audit_http(queue_capacity=10000, **extra):
    http = {"cluster": "audit_collector", "path": "/ingest", "batch_max_records": 100,
            "flush_interval_ms": 200, "queue_capacity": queue_capacity, "timeout_ms": 2000,
            "retry_max_ms": 2000}
    http.update(extra)
    with open(os.path.join(ROOT, "envoy/filters/audit.json")) as f:
        audit = json.load(f)
    audit.update({"sink": "http", "http": http, "sample_rate": 1.0})
    return audit


def drain(chain, seconds=60):
    """Waits until every record the filter wrote is shipped or counted dropped, and the
    collector has them; returns the last (stats, collector counts)."""
    end = time.time() + seconds
    while True:
        s, c = chain.stats(), chain.collector_counts()
        records = s.get("portcullis_audit_records", 0)
        settled = s.get("portcullis_audit_shipped", 0) + s.get("portcullis_audit_dropped", 0) >= records
        if (settled and c["records"] >= s.get("portcullis_audit_shipped", 0)) or time.time() > end:
            return s, c
        time.sleep(1)


def audit_checks(report, prefix, stats, counts, served, expect_drops=False):
    records = int(stats.get("portcullis_audit_records", 0))
    shipped = int(stats.get("portcullis_audit_shipped", 0))
    dropped = int(stats.get("portcullis_audit_dropped", 0))
    report.figures[f"{prefix}_audit"] = {
        "requests_served": served, "records": records, "shipped": shipped, "dropped": dropped,
        "queued": int(stats.get("portcullis_audit_queued", 0)),
        "ship_failures": int(stats.get("portcullis_audit_ship_failures", 0)),
        "batches": int(stats.get("portcullis_audit_batches", 0)),
        "collector_records": counts["records"], "collector_dropped_reported": counts["dropped_reported"],
        "collector_duplicates": counts.get("duplicates", 0), "collector_bad_batches": counts.get("bad_batches", 0),
    }
    if served is not None:
        report.check(f"{prefix}: audit records == requests served", records == served,
                     f"{records} records, {served} requests")
    report.check(f"{prefix}: shipped + dropped == records", shipped + dropped == records,
                 f"{shipped} + {dropped} vs {records}")
    report.check(f"{prefix}: the collector has every shipped record", counts["records"] == shipped,
                 f"collector {counts['records']}, shipped {shipped}")
    report.check(f"{prefix}: every drop is reported to the collector too",
                 counts["dropped_reported"] == dropped,
                 f"batch headers {counts['dropped_reported']}, metric {dropped}")
    if expect_drops:
        report.check(f"{prefix}: beyond the bound, records are dropped and counted", dropped > 0,
                     f"dropped {dropped}")
    else:
        report.check(f"{prefix}: dropped == 0", dropped == 0, f"dropped {dropped}")
    report.check(f"{prefix}: no malformed batch", counts.get("bad_batches", 0) == 0,
                 f"{counts.get('bad_batches', 0)}")


def verify_records(report, prefix, chain):
    path = os.path.join(chain.collector_dir, "records.ndjson")
    if not (os.path.exists(VERIFY) and os.path.exists(path)):
        return
    r = subprocess.run([VERIFY, path], capture_output=True, text=True)
    report.check(f"{prefix}: portcullis-audit-verify on the collected records", r.returncode == 0,
                 (r.stdout or r.stderr).strip().splitlines()[-1] if (r.stdout or r.stderr).strip() else "")


# --- soak -----------------------------------------------------------------------------------

def k6_seconds(text):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", text)
    if not m or not text:
        sys.exit(f"{text!r}: expected a k6 duration such as 15s, 10m or 1m30s")
    return 60 * int(m.group(1) or 0) + int(m.group(2) or 0)


def saturation(out, report):
    """Stepped constant arrival rates: the highest one the chain sustains (p99 < 250 ms, no
    failed request, every iteration started, 95 % of the offered rate achieved)."""
    step = os.environ.get("SOAK_STEP", "15s")
    rate = env_int("SOAK_START_RATE", 100)
    ceiling = env_int("SOAK_MAX_RATE", 20000)
    steps, good, bad = [], 0, None

    seconds = k6_seconds(step)

    def sustained(s, r):
        # k6 drops an iteration when no VU is free at its start time: a few while it allocates
        # VUs on a loaded machine, many once the chain cannot keep up.
        return (s["p99_ms"] < 250 and s["failed"] == 0
                and s["dropped_iterations"] <= 0.01 * r * seconds and s["rps"] >= 0.9 * r)

    while rate <= ceiling:
        s = k6(out, f"step-{rate}", rate, step)
        ok = sustained(s, rate)
        steps.append(dict(rate=rate, ok=ok, **s))
        log(f"step {rate}/s: {s['rps']} req/s, p99 {s['p99_ms']} ms, failed {s['failed']}, "
            f"iterations not started {s['dropped_iterations']}: {'sustained' if ok else 'not sustained'}")
        if not ok:
            bad = rate
            break
        good = rate
        rate = int(rate * 1.5)
    # Two bisection steps between the last sustained rate and the first that was not.
    for _ in range(2):
        if not bad or not good or bad - good < max(20, good // 20):
            break
        mid = (good + bad) // 2
        s = k6(out, f"step-{mid}", mid, step)
        ok = sustained(s, mid)
        steps.append(dict(rate=mid, ok=ok, **s))
        log(f"step {mid}/s: {s['rps']} req/s, p99 {s['p99_ms']} ms, failed {s['failed']}: "
            f"{'sustained' if ok else 'not sustained'}")
        good, bad = (mid, bad) if ok else (good, mid)
    report.figures["saturation"] = {"max_sustained_rate": good, "first_unsustained": bad,
                                    "step": step, "steps": steps}
    return good


def soak(out, report):
    minutes = env_int("SOAK_MINUTES", 10)
    chain = Chain(out, audit_http())
    chain.render()
    tokens(out)
    try:
        chain.start_upstream()
        chain.start_collector()
        chain.start_envoy()
        log("saturation ramp")
        best = saturation(out, report)
        report.check("saturation: some rate sustained", best > 0, f"{best} req/s")
        if best <= 0:
            return
    finally:
        chain.stop_all()

    # A fresh chain and collector for the soak itself, so that its counts are the soak's.
    rate = env_int("SOAK_RATE", max(1, best * 70 // 100))
    chain.collector_dir = os.path.join(out, "collector-soak")
    try:
        chain.start_upstream()
        chain.start_collector()
        chain.start_envoy()
        log(f"soak: {rate} req/s (70 % of {best}) for {minutes} min")
        p, summary = k6(out, "soak", rate, f"{minutes}m", background=True)
        started = time.time()
        samples, rss_1min = [], None
        deadline = started + minutes * 60 + 120
        while p.poll() is None and time.time() < deadline:
            time.sleep(5)
            rss = chain.rss_kb()
            t = round(time.time() - started)
            samples.append((t, rss))
            if rss_1min is None and t >= 60:
                rss_1min = rss
                log(f"soak: Envoy RSS after the first minute {rss} kB")
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            report.check("soak: k6 finished in time", False, "killed after the deadline")
            return
        rss_end = chain.rss_kb()
        s = read_summary(summary)
        stats, counts = drain(chain)
        report.figures["soak"] = dict(rate=rate, minutes=minutes, rss_1min_kb=rss_1min,
                                      rss_end_kb=rss_end, rss_samples=samples, **s)
        report.check("soak: no unintended 5xx", s["server_5xx"] == 0, f"{s['server_5xx']} 5xx")
        report.check("soak: no failed request", s["failed"] == 0,
                     f"{s['failed']} of {s['requests']}")
        report.check("soak: offered rate achieved (under 0.5 % of iterations not started)",
                     s["dropped_iterations"] <= 0.005 * rate * minutes * 60,
                     f"{s['rps']} req/s, {s['dropped_iterations']} iterations not started")
        growth = (rss_end - rss_1min) / rss_1min if rss_1min else 1.0
        report.check("soak: Envoy RSS at the end within 5 % of after the first minute",
                     rss_1min is not None and abs(growth) <= 0.05,
                     f"{rss_1min} kB -> {rss_end} kB ({growth:+.1%})")
        audit_checks(report, "soak", stats, counts, s["requests"])
        verify_records(report, "soak", chain)
    finally:
        chain.stop_all()


# --- faults ---------------------------------------------------------------------------------

def rsa_jwks(out):
    """A TEST-ONLY RS256 key made for this run (never committed) and its JWKS."""
    key = os.path.join(out, "TEST-ONLY-jwks-rsa.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "soak-1", "e": "AQAB",
           "n": b64u(bytes.fromhex(modulus))}
    path = os.path.join(out, "jwks.json")
    with open(path, "w") as f:
        json.dump({"keys": [jwk]}, f)
    return key, path


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def rs256(key, claims, kid="soak-1"):
    header = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = b64u(json.dumps(claims).encode())
    signing = f"{header}.{body}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                         check=True, capture_output=True).stdout
    return f"{header}.{body}.{b64u(sig)}"


IDP_ISSUER = "https://idp.soak.invalid"


def faults_auth():
    with open(os.path.join(ROOT, "envoy/filters/auth.json")) as f:
        auth = json.load(f)
    auth["providers"].append({
        "name": "idp", "issuer": IDP_ISSUER, "audiences": ["portcullis-demo-api"],
        "roles_claim": "roles",
        "remote_jwks": {"cluster": "auth_idp", "path": "/jwks.json", "refresh_secs": 2,
                        "retry_secs": 1, "min_refetch_secs": 1, "timeout_ms": 1000},
    })
    return auth


def faults_ratelimit(out):
    """The load limits, plus a per-API-key limit, so that 10 000 keys land in a table too."""
    with open(os.path.join(ROOT, "k6/config/ratelimit-client.json")) as f:
        rl = json.load(f)
    rl["limits"].append({"name": "per-key", "algorithm": "token_bucket", "limit": 1000000,
                         "window": 1, "burst": 1000000, "key": ["header:x-api-key"]})
    path = os.path.join(out, "ratelimit-client.json")
    with open(path, "w") as f:
        json.dump(rl, f)
    return path


class SlowClient(threading.Thread):
    """Sends a request one byte a second: its headers (`part` "headers"), or complete headers
    and then its body. Records how long the chain let it go on and what it answered."""

    def __init__(self, part, limit):
        super().__init__(daemon=True)
        self.part, self.limit = part, limit
        self.seconds, self.answer = None, b""

    def run(self):
        start = time.time()
        try:
            raw = socket.create_connection(("127.0.0.1", PORTS["HTTPS_PORT"]), timeout=5)
            s = TLS.wrap_socket(raw, server_hostname="localhost")
            head = (f"POST /echo/slow HTTP/1.1\r\nhost: localhost:{PORTS['HTTPS_PORT']}\r\n"
                    f"content-type: text/plain\r\ncontent-length: 500\r\n\r\n").encode()
            if self.part == "headers":
                trickle, = [head]
            else:
                s.sendall(head)
                trickle = b"x" * 500
            s.settimeout(0.5)
            for i in range(len(trickle)):
                if time.time() - start > self.limit:
                    break
                s.sendall(trickle[i:i + 1])
                try:
                    # Waits half a second for an answer: the pace of the trickle.
                    got = s.recv(4096)
                    self.answer += got
                    break
                except (socket.timeout, TimeoutError):
                    pass
        except (OSError, ssl.SSLError):
            pass
        self.seconds = round(time.time() - start, 1)


def faults(out, report):
    rate = env_int("FAULTS_RATE", 40)
    jwks_key, jwks_path = rsa_jwks(out)
    chain = Chain(out, audit_http(queue_capacity=env_int("FAULTS_QUEUE", 2000)), auth=faults_auth(),
                  ratelimit_client=faults_ratelimit(out), sets=["XFF_TRUSTED_HOPS=1"])
    chain.render()
    _, toks = tokens(out)
    now = int(time.time())
    idp_token = rs256(jwks_key, {"iss": IDP_ISSUER, "aud": "portcullis-demo-api", "sub": "idp-user",
                                 "roles": ["viewer"], "iat": now, "nbf": now, "exp": now + 3600})
    served = 0
    try:
        chain.start_upstream()
        chain.start_collector()
        chain.start_jwks(jwks_path)
        chain.start_envoy()

        # 0. Baseline, for the latency comparisons below.
        base = k6(out, "baseline", rate, "20s")
        served += base["requests"]
        report.figures["baseline"] = base
        report.check("baseline: no failed request", base["failed"] == 0, f"{base}")

        # 1. The upstream killed, then restarted.
        log("fault: upstream killed for 5 s")
        p, summary = k6(out, "upstream", rate, "30s", extra={"FAULTS": "1"}, background=True)
        time.sleep(8)
        chain.stop("upstream", signal.SIGKILL)
        down = [https_get("/api/orders?down=1", {"authorization": f"Bearer {toks['viewer']}"})
                for _ in range(3)]
        time.sleep(5)
        chain.start_upstream()
        back = None
        for _ in range(50):
            st = https_get("/api/orders?back=1", {"authorization": f"Bearer {toks['viewer']}"})
            served += 1
            if st[0] == 200:
                back = st
                break
            time.sleep(0.2)
        p.wait(120)
        s = read_summary(summary)
        served += s["requests"] + len(down)
        plain = s["server_5xx"] - s["problem_503"]
        report.figures["upstream_down"] = dict(probes=[(d[0], d[1], round(d[3], 2)) for d in down], **s)
        report.check("upstream down: a direct request gets 503 problem+json, promptly",
                     all(d[0] == 503 and d[1].startswith("application/problem+json") and d[3] < 16
                         for d in down),
                     f"{[(d[0], d[1], round(d[3], 2)) for d in down]}")
        report.check("upstream down: under load every answer is 200 or 503 problem+json",
                     s["failed"] == 0 and plain == 0,
                     f"{s['requests']} requests, {s['problem_503']} problem+json 503, {plain} other 5xx, "
                     f"{s['failed']} failed")
        report.check("upstream down: nothing hangs", s["max_ms"] < 16000 and s["dropped_iterations"] == 0,
                     f"max {s['max_ms']} ms, {s['dropped_iterations']} iterations not started")
        report.check("upstream restarted: requests succeed again", back is not None, "200 again")

        # 2. The audit collector down for 30 s, within the queue's bound, then beyond it.
        for name, r, expect_drops in (("within", rate, False),
                                      ("beyond", env_int("FAULTS_BEYOND_RATE", 120), True)):
            before, cbefore = drain(chain, 30)
            log(f"fault: audit collector down for 30 s at {r} req/s ({name} the bound)")
            p, summary = k6(out, f"collector-{name}", r, "40s", background=True)
            time.sleep(5)
            chain.stop("collector", signal.SIGKILL)
            time.sleep(30)
            queued_while_down = chain.stats()
            chain.start_collector()
            p.wait(120)
            s = read_summary(summary)
            served += s["requests"]
            after, cafter = drain(chain, 90)
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            cdelta = {k: cafter.get(k, 0) - cbefore.get(k, 0) for k in ("records", "dropped_reported", "batches", "duplicates", "bad_batches")}
            report.figures[f"collector_down_{name}"] = dict(
                rate=r, requests=s["requests"], failed=s["failed"],
                waiting_when_back=int(queued_while_down.get("portcullis_audit_records", 0)
                                      - queued_while_down.get("portcullis_audit_shipped", 0)
                                      - queued_while_down.get("portcullis_audit_dropped", 0)))
            report.check(f"collector down ({name}): clients unaffected", s["failed"] == 0,
                         f"{s['failed']} failed of {s['requests']}, p99 {s['p99_ms']} ms")
            audit_checks(report, f"collector down ({name})", delta, cdelta, s["requests"],
                         expect_drops=expect_drops)

        # 3. The JWKS endpoint down: the keys fetched before keep working.
        log("fault: JWKS endpoint down")
        auth = {"authorization": f"Bearer {idp_token}"}
        first = https_get("/api/orders?jwks=up", auth)
        fetches_before = chain.stats()
        chain.stop("jwks", signal.SIGKILL)
        results = []
        for i in range(20):
            results.append(https_get(f"/api/orders?jwks=down{i}", auth)[0])
            time.sleep(0.5)
        unknown = rs256(jwks_key, {"iss": IDP_ISSUER, "aud": "portcullis-demo-api", "sub": "x",
                                   "iat": now, "exp": now + 3600}, kid="soak-unknown")
        unknown_status = https_get("/api/orders?jwks=unknown", {"authorization": f"Bearer {unknown}"})
        after_unknown = https_get("/api/orders?jwks=after", auth)[0]
        served += 23
        fetches = chain.stats()
        failed_fetches = int(fetches.get("portcullis_auth_jwks_fetch_failed", 0)
                             - fetches_before.get("portcullis_auth_jwks_fetch_failed", 0))
        chain.start_jwks(jwks_path)
        report.figures["jwks_down"] = {"before": first[0], "while_down": results,
                                       "unknown_kid": unknown_status[0], "after_unknown_kid": after_unknown,
                                       "failed_fetches_while_down": failed_fetches}
        report.check("JWKS down: the filter did try to refresh (and failed)", failed_fetches > 0,
                     f"{failed_fetches} failed fetches")
        report.check("JWKS up: the remote key verifies", first[0] == 200, f"{first[0]}")
        report.check("JWKS down 10 s (refresh every 2 s): last good keys keep working",
                     all(r == 200 for r in results) and after_unknown == 200, f"{results}, then {after_unknown}")
        report.check("JWKS down: an unknown kid is refused, not let through",
                     unknown_status[0] == 401, f"{unknown_status[0]}")

        # 4. Slow clients: headers, and a body, one byte at a time, during normal load.
        slow_n = env_int("FAULTS_SLOW_CLIENTS", 10)
        log(f"fault: {slow_n}+{slow_n} clients sending headers / body byte by byte")
        slow = [SlowClient(part, 90) for part in ("headers", "body") for _ in range(slow_n)]
        for c in slow:
            c.start()
        s = k6(out, "slow-clients", rate, "70s")
        served += s["requests"]
        for c in slow:
            c.join(100)
        heads = [c.seconds for c in slow if c.part == "headers"]
        bodies = [c.seconds for c in slow if c.part == "body"]
        answers = sorted({(c.answer.split(b"\r\n", 1)[0] or b"(closed)").decode("latin-1") for c in slow})
        report.figures["slow_clients"] = {"header_cut_after_s": heads, "body_cut_after_s": bodies,
                                          "answers": answers, "load": s}
        report.check("slow headers: cut off by request_headers_timeout (10 s)",
                     all(t is not None and t < 20 for t in heads), f"{heads}")
        report.check("slow body: cut off by request_timeout (60 s)",
                     all(t is not None and t < 75 for t in bodies), f"{bodies}")
        report.check("slow clients: nothing else slowed",
                     s["failed"] == 0 and s["p99_ms"] < max(250, 2 * base["p99_ms"]),
                     f"p99 {s['p99_ms']} ms (baseline {base['p99_ms']} ms), failed {s['failed']}")

        # 5. 10 000 distinct client addresses and API keys, twice: memory is the tables'.
        rss = [chain.rss_kb()]
        for round_ in range(2):
            s = k6(out, f"clients-{round_}", 0, "0s", script="k6/soak_clients.js",
                   extra={"CLIENTS": str(env_int("FAULTS_CLIENTS", 10000)), "OFFSET": str(round_ * 100000)})
            served += s["requests"]
            rss.append(chain.rss_kb())
            report.figures[f"clients_{round_}"] = dict(rss_kb=rss[-1], **s)
            report.check(f"10 000 clients (round {round_ + 1}): every request answered as meant",
                         s["failed"] == 0, f"{s['requests']} requests, {s['failed']} failed")
        st = chain.stats()
        report.figures["clients_rss_kb"] = rss
        report.figures["clients_tables"] = {k: v for k, v in st.items()
                                            if k.startswith("portcullis_ratelimit") and "evict" in k}
        growth = (rss[2] - rss[1]) / rss[1] if rss[1] else 1
        report.check("10 000 more clients: Envoy RSS flat (within 5 %)", abs(growth) <= 0.05,
                     f"{rss[0]} kB before, {rss[1]} kB after 10 000, {rss[2]} kB after 20 000 ({growth:+.1%})")

        # Everything the chain served during the faults has its record or a counted drop.
        stats, counts = drain(chain, 60)
        report.figures["faults_requests_sent"] = served
        records = int(stats.get("portcullis_audit_records", 0))
        report.check("faults: shipped + dropped == records over the whole run",
                     int(stats.get("portcullis_audit_shipped", 0)) + int(stats.get("portcullis_audit_dropped", 0)) == records,
                     f"{int(stats.get('portcullis_audit_shipped', 0))} + {int(stats.get('portcullis_audit_dropped', 0))} vs {records}")
        report.check("faults: the collector has every shipped record",
                     counts["records"] == int(stats.get("portcullis_audit_shipped", 0)),
                     f"{counts['records']} vs {int(stats.get('portcullis_audit_shipped', 0))}")
        verify_records(report, "faults", chain)
    finally:
        chain.stop_all()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("soak", "faults"):
        sys.exit("usage: soak_harness.py soak|faults")
    for port in set(PORTS.values()):
        if port_open(port):
            sys.exit(f"127.0.0.1:{port} is in use (an earlier run still going?); stop it first")
    out = os.path.join(ROOT, ".dev/soak", mode)
    if os.path.isdir(out):
        subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)
    report = Report(out)
    started = time.time()
    try:
        if mode == "soak":
            soak(out, report)
            if os.environ.get("SOAK_FAULTS") == "1":
                faults(os.path.join(out, "faults"), report)
        else:
            faults(out, report)
    except Exception as e:  # a harness error fails the run, with its reason
        report.check("harness", False, f"{type(e).__name__}: {e}")
    report.figures["wall_seconds"] = round(time.time() - started)
    report.save()
    failed = [c["check"] for c in report.checks if not c["ok"]]
    log(f"{mode}: {len(report.checks) - len(failed)}/{len(report.checks)} checks passed "
        f"({report.figures['wall_seconds']} s); report in {os.path.relpath(out, ROOT)}/report.json")
    if failed:
        log(f"{mode}: FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
