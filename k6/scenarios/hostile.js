// A mix with hostile requests: mostly ordinary traffic, one request in five an attack (SQL
// injection, XSS, path traversal, command injection, in the query, a JSON body or a header). The
// sanitizer must refuse every attack with 403 problem+json `<category>_detected`, and let every
// benign request through (a false positive fails the run just like a miss).
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { BASE, ORIGIN, baseOptions, duration, expecting, int, isProblem } from '../lib/common.js';

const blocked = new Rate('hostile_blocked');
const passed = new Rate('benign_passed');

export const options = Object.assign({}, baseOptions, {
  vus: int('HOSTILE_VUS', 8),
  duration: duration('HOSTILE', '30s'),
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate==1'],
    hostile_blocked: ['rate==1'],
    benign_passed: ['rate==1'],
    http_req_duration: ['p(95)<250', 'p(99)<500'],
  },
});

const json = { 'Content-Type': 'application/json', Origin: ORIGIN };

// [label, category, request]; each request is {method, path, body?, headers?}.
const attacks = [
  ['sqli in query', 'sqli', { method: 'GET', path: "/echo/search?id=1%27%20OR%201%3D1--" }],
  ['xss in query', 'xss', { method: 'GET', path: '/echo/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E' }],
  ['traversal in query', 'traversal', { method: 'GET', path: '/echo/files?file=..%2F..%2F..%2Fetc%2Fpasswd' }],
  ['cmdi in query', 'cmdi', { method: 'GET', path: '/echo/run?cmd=%3Bcat%20%2Fetc%2Fpasswd' }],
  ['sqli in json body', 'sqli', { method: 'POST', path: '/echo/comments', body: JSON.stringify({ q: "x' OR 1=1--" }), headers: json }],
  ['xss in json body', 'xss', { method: 'POST', path: '/echo/comments', body: JSON.stringify({ text: '<img src=x onerror=alert(1)>' }), headers: json }],
];

const benign = [
  { method: 'GET', path: '/echo/search?q=hello%20world&page=2' },
  { method: 'GET', path: "/echo/people?name=O%27Brien" },
  { method: 'GET', path: '/api/products/2' },
  { method: 'POST', path: '/echo/comments', body: JSON.stringify({ text: "Tom & Jerry; it's 20% off -- see the FAQ", tags: ['sale', 'München'] }), headers: json },
];

function send(req, params) {
  return http.request(req.method, `${BASE}${req.path}`, req.body || null,
    Object.assign({ headers: req.headers || {} }, params));
}

export default function () {
  if (Math.random() < 0.2) {
    const [label, category, req] = attacks[Math.floor(Math.random() * attacks.length)];
    const res = send(req, expecting([403], { tags: { traffic: 'hostile' } }));
    const ok = isProblem(res, 403, `${category}_detected`);
    blocked.add(ok);
    check(res, { [`${label}: 403 ${category}_detected`]: () => ok });
  } else {
    const req = benign[Math.floor(Math.random() * benign.length)];
    const res = send(req, { tags: { traffic: 'benign' } });
    passed.add(res.status === 200);
    check(res, { [`benign ${req.method} ${req.path.split('?')[0]}: 200`]: (r) => r.status === 200 });
  }
}
