// Ramping load: virtual users climb in stages to RAMP_VUS, hold, and come down, on a mix of
// public reads (some cached), authenticated reads and small JSON writes.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, ORIGIN, baseOptions, bearer, duration, int } from '../lib/common.js';

const peak = int('RAMP_VUS', 20);
const total = duration('RAMP', '60s');
// The stages split RAMP_DURATION: a third up (in two steps), a third at the peak, the rest down.
// RAMP_DURATION is k6-style: `90s`, `2m` or `1m30s`.
function toSeconds(text) {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  const s = m ? 60 * Number(m[1] || 0) + Number(m[2] || 0) : 0;
  if (s < 6) throw new Error(`RAMP_DURATION=${text}: expected at least 6s, as 90s, 2m or 1m30s`);
  return s;
}
const seconds = toSeconds(total);
const step = Math.floor(seconds / 6);

export const options = Object.assign({}, baseOptions, {
  stages: [
    { duration: `${step}s`, target: Math.max(1, Math.floor(peak / 2)) },
    { duration: `${step}s`, target: peak },
    { duration: `${2 * step}s`, target: peak },
    { duration: `${seconds - 4 * step}s`, target: 0 },
  ],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    http_req_duration: ['p(95)<250', 'p(99)<500'],
  },
});

const json = { 'Content-Type': 'application/json', Origin: ORIGIN };

export default function () {
  const roll = Math.random();
  let res;
  if (roll < 0.4) {
    res = http.get(`${BASE}/api/products/${1 + Math.floor(Math.random() * 5)}`, { tags: { kind: 'public' } });
  } else if (roll < 0.6) {
    res = http.get(`${BASE}/echo/ramp?page=${Math.floor(Math.random() * 100)}`, { tags: { kind: 'public' } });
  } else if (roll < 0.9) {
    res = http.get(`${BASE}/api/orders?page=${Math.floor(Math.random() * 10)}`, {
      headers: bearer('viewer'),
      tags: { kind: 'authenticated' },
    });
  } else {
    res = http.post(`${BASE}/api/orders`, JSON.stringify({ item: 'widget', qty: 2 }), {
      headers: Object.assign({}, json, bearer('editor')),
      tags: { kind: 'write' },
    });
  }
  check(res, { '200': (r) => r.status === 200 });
}
