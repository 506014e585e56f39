// A burst that trips the real rate limiter: `POST /login` is limited to 5 a minute per client
// (envoy/filters/ratelimit-client.json, kept as is in the load config). BURST_REQUESTS logins
// arrive at once from 127.0.0.1: exactly 5 get 200, every other one 429 problem+json with
// Retry-After. Nothing else is acceptable, and 429 is not an error here.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE, ORIGIN, baseOptions, expecting, int, isProblem } from '../lib/common.js';

const burst = int('BURST_REQUESTS', 40);
const allowed = new Counter('login_allowed');
const limited = new Counter('login_limited');
const unexpected = new Counter('login_unexpected');

export const options = Object.assign({}, baseOptions, {
  scenarios: {
    burst: { executor: 'shared-iterations', vus: 10, iterations: burst, maxDuration: '30s' },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    login_allowed: ['count==5'],
    [`login_limited`]: [`count==${burst - 5}`],
    login_unexpected: ['count==0'],
    http_req_duration: ['p(95)<250', 'p(99)<500'],
  },
});

export default function () {
  const res = http.post(`${BASE}/login`, JSON.stringify({ username: 'ada' }), expecting([200, 429], {
    headers: { 'Content-Type': 'application/json', Origin: ORIGIN },
  }));
  if (res.status === 200) {
    allowed.add(1);
  } else if (isProblem(res, 429) && Number(res.headers['Retry-After']) > 0) {
    limited.add(1);
  } else {
    unexpected.add(1);
  }
  check(res, {
    '200, or 429 problem+json with Retry-After': (r) => r.status === 200 ||
      (isProblem(r, 429) && Number(r.headers['Retry-After']) > 0),
  });
}
