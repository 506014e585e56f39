// Shared by every scenario: where the chain is, the demo tokens, and helpers for the statuses a
// request is meant to get (so that an intended 401/403/429 is not counted in http_req_failed).
import http from 'k6/http';

// Every request goes to loopback: `localhost` is pinned to 127.0.0.1 (Envoy listens there only).
export const BASE = __ENV.BASE_URL || 'https://localhost:8443';
export const ORIGIN = 'https://localhost:8443';

export const baseOptions = {
  hosts: { localhost: '127.0.0.1' },
  // Cookies and redirects would hide what the chain answered.
  maxRedirects: 0,
  discardResponseBodies: false,
};

// Minted by scripts/load.sh with `portcullis-devkit token --role ROLE`.
const tokensFile = __ENV.TOKENS_FILE;
export const tokens = tokensFile ? JSON.parse(open(tokensFile)) : {};

export function bearer(role) {
  const token = tokens[role];
  if (!token) {
    throw new Error(`no ${role} token: run through \`make load\`, which mints them`);
  }
  return { Authorization: `Bearer ${token}` };
}

// Request params that expect exactly these statuses: anything else counts as a failed request.
export function expecting(statuses, extra = {}) {
  return Object.assign({}, extra, { responseCallback: http.expectedStatuses(...statuses) });
}

// Duration of a scenario, overridable per scenario, e.g. RAMP_DURATION=2m.
export function duration(name, fallback) {
  return __ENV[`${name}_DURATION`] || fallback;
}

export function int(name, fallback) {
  const v = parseInt(__ENV[name] || '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

// A Portcullis refusal: problem+json with the given status and a reason code.
export function isProblem(res, status, reasonPrefix) {
  if (res.status !== status) return false;
  if (!String(res.headers['Content-Type'] || '').startsWith('application/problem+json')) return false;
  try {
    const body = JSON.parse(res.body);
    return body.status === status && typeof body.request_id === 'string' &&
      typeof body.reason === 'string' && (!reasonPrefix || body.reason.startsWith(reasonPrefix));
  } catch (_) {
    return false;
  }
}
