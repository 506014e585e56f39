// `make faults` (docs/reliability.md): CLIENTS requests, each from its own client address (an
// X-Forwarded-For hop the chain, rendered with XFF_TRUSTED_HOPS=1, trusts) with its own API key,
// unauthenticated: every one lands in the per-IP and per-key rate-limit tables, the penalty
// table (a 401 is a strike) and the audit filter's table of failing clients. OFFSET starts the
// numbering elsewhere, so that a second run brings only new clients.
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { BASE, baseOptions, isProblem } from './lib/common.js';

const clients = parseInt(__ENV.CLIENTS || '10000', 10);
const offset = parseInt(__ENV.OFFSET || '0', 10);

export const options = Object.assign({}, baseOptions, {
  scenarios: {
    clients: { executor: 'shared-iterations', vus: 20, iterations: clients, maxDuration: '5m' },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
});

export default function () {
  const n = offset + exec.scenario.iterationInTest;
  const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const res = http.get(`${BASE}/api/orders?client=${n}`, {
    headers: { 'X-Forwarded-For': ip, 'X-Api-Key': `soak-key-${n}` },
    responseCallback: http.expectedStatuses(401),
  });
  check(res, { '401 problem+json': (r) => isProblem(r, 401) });
}
