// `make soak` / `make faults` (docs/reliability.md): the `ramp` scenario's request mix at a fixed
// arrival rate, so that the rate the chain is offered does not depend on how fast it answers.
//   RATE        requests a second (constant-arrival-rate)
//   DURATION    k6-style: 15s, 10m
//   BASE_URL    the chain (the harness runs it on its own ports)
//   FAULTS=1    an upstream outage is under way: a 503 problem+json is an intended answer
// Every request is counted per status class in the summary; the harness judges the figures.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE, baseOptions, bearer, isProblem } from './lib/common.js';

const rate = parseInt(__ENV.RATE || '50', 10);
const faults = __ENV.FAULTS === '1';
const server5xx = new Counter('server_5xx');
const problem503 = new Counter('problem_503');
const origin = BASE.replace(/^(https?:\/\/[^/]+).*$/, '$1');

export const options = Object.assign({}, baseOptions, {
  scenarios: {
    offered: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '15s',
      // Enough for 200 ms a request at the offered rate; k6 counts what it could not start as
      // dropped_iterations (the chain is past saturation).
      preAllocatedVUs: Math.max(20, Math.ceil(rate / 5)),
      maxVUs: Math.max(100, rate),
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  // Nothing in flight may outlive the run by more than this: a hang shows as an error.
  gracefulStop: '10s',
});

const json = { 'Content-Type': 'application/json', Origin: origin };
const expected = faults ? http.expectedStatuses(200, 503) : http.expectedStatuses(200);

export default function () {
  const roll = Math.random();
  const params = { responseCallback: expected, timeout: '20s' };
  let res;
  if (roll < 0.4) {
    res = http.get(`${BASE}/api/products/${1 + Math.floor(Math.random() * 5)}`, params);
  } else if (roll < 0.6) {
    res = http.get(`${BASE}/echo/soak?page=${Math.floor(Math.random() * 100)}`, params);
  } else if (roll < 0.9) {
    res = http.get(`${BASE}/api/orders?page=${Math.floor(Math.random() * 10)}`,
      Object.assign({ headers: bearer('viewer') }, params));
  } else {
    res = http.post(`${BASE}/api/orders`, JSON.stringify({ item: 'widget', qty: 2 }),
      Object.assign({ headers: Object.assign({}, json, bearer('editor')) }, params));
  }
  if (res.status >= 500) {
    server5xx.add(1);
    if (res.status === 503 && isProblem(res, 503)) problem503.add(1);
  }
  check(res, {
    'intended status': (r) => r.status === 200 || (faults && r.status === 503 && isProblem(r, 503)),
  });
}
