// Authenticated flow: tokens for viewer, editor and admin (minted by `make load`) call what each
// role may and may not do under envoy/filters/auth.json. The 401s and 403s are the point here, so
// each request lists the status it must get and only another status counts as a failure.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, ORIGIN, baseOptions, bearer, duration, expecting, int, isProblem } from '../lib/common.js';

export const options = Object.assign({}, baseOptions, {
  vus: int('AUTH_VUS', 8),
  duration: duration('AUTH', '30s'),
  thresholds: {
    http_req_failed: ['rate<0.01'],
    // Every call got exactly the status the auth config says, with a problem body on refusals.
    checks: ['rate==1'],
    http_req_duration: ['p(95)<250', 'p(99)<500'],
    'http_req_duration{expected:allowed}': ['p(95)<250'],
    'http_req_duration{expected:refused}': ['p(95)<250'],
  },
});

const write = JSON.stringify({ item: 'widget', qty: 1 });
const jsonHeaders = { 'Content-Type': 'application/json', Origin: ORIGIN };

// [who, method, path, expected status]; `anonymous` sends no token.
const matrix = [
  ['anonymous', 'GET', '/api/orders', 401],
  ['viewer', 'GET', '/api/orders', 200],
  ['viewer', 'POST', '/api/orders', 403],
  ['viewer', 'GET', '/admin/users', 403],
  ['editor', 'GET', '/api/orders', 200],
  ['editor', 'POST', '/api/orders', 200],
  ['editor', 'DELETE', '/api/orders/7', 200],
  ['editor', 'GET', '/admin/users', 403],
  ['admin', 'GET', '/admin/users', 200],
  ['admin', 'POST', '/api/orders', 200],
];

export default function () {
  for (const [who, method, path, status] of matrix) {
    const headers = Object.assign({}, jsonHeaders, who === 'anonymous' ? {} : bearer(who));
    const params = expecting([status], {
      headers,
      tags: { role: who, expected: status === 200 ? 'allowed' : 'refused' },
    });
    const body = method === 'GET' ? null : write;
    const res = http.request(method, `${BASE}${path}`, body, params);
    check(res, {
      [`${who} ${method} ${path} -> ${status}`]: (r) =>
        status === 200 ? r.status === 200 : isProblem(r, status),
    });
  }
}
