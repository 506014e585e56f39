// Smoke: one user walks the main routes once a second; everything must answer as documented.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE, baseOptions, bearer, duration, expecting, isProblem } from '../lib/common.js';

export const options = Object.assign({}, baseOptions, {
  vus: 1,
  duration: duration('SMOKE', '15s'),
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    http_req_duration: ['p(95)<200', 'p(99)<500'],
  },
});

export default function () {
  check(http.get(`${BASE}/healthz`), { 'healthz 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/api/products`), {
    'products 200 json': (r) =>
      r.status === 200 && String(r.headers['Content-Type']).startsWith('application/json'),
  });
  check(http.get(`${BASE}/api/products/1`), { 'product 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/static/logo.png`), { 'logo 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/echo/smoke?q=hello`), { 'echo 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/api/orders`, expecting([401])), {
    'no token: 401 problem': (r) => isProblem(r, 401),
  });
  check(http.get(`${BASE}/api/orders`, { headers: bearer('viewer') }), {
    'viewer token: 200': (r) => r.status === 200,
  });
  sleep(1);
}
