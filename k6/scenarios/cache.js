// Cache-hit-heavy reads: the product list and a few products, read over and over. After the first
// miss of each URL the cache must answer (`Cache-Status: portcullis; hit`).
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { BASE, baseOptions, duration, int } from '../lib/common.js';

const cacheHits = new Rate('cache_hits');

export const options = Object.assign({}, baseOptions, {
  vus: int('CACHE_VUS', 10),
  duration: duration('CACHE', '30s'),
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    // Six URLs with max-age=60: all but the first fetch of each (and one refresh a minute) hit.
    cache_hits: ['rate>0.95'],
    http_req_duration: ['p(95)<200', 'p(99)<400'],
  },
});

const paths = ['/api/products', '/api/products/1', '/api/products/2', '/api/products/3',
  '/api/products/4', '/api/products/9'];

export default function () {
  const path = paths[Math.floor(Math.random() * paths.length)];
  const res = http.get(`${BASE}${path}`);
  const status = String(res.headers['Cache-Status'] || '');
  cacheHits.add(/^portcullis; hit\b/.test(status));
  check(res, {
    '200 with Cache-Status': (r) => r.status === 200 && status.startsWith('portcullis;'),
  });
}
