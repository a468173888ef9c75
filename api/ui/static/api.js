// The API as the page uses it: every call carries the key kept for this browser tab, and a
// 401 forgets the key and asks the page to prompt for one again.

const KEY_STORAGE = "kjobs.apiKey";
export const UNAUTHORIZED_EVENT = "kjobs:unauthorized";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

export function authHeaders(key = storedKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

/** Fetch a path of the API; answers the Response when ok, else throws ApiError. */
export async function request(path, { method = "GET", body, signal, key } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(key) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) return response;
  const detail = await problemDetail(response);
  if (response.status === 401 && key === undefined) {
    forgetKey();
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail }));
  }
  throw new ApiError(response.status, detail);
}

/** GET (or another method) and parse JSON. */
export async function getJson(path, options) {
  return (await request(path, options)).json();
}

/** Whether the service asks for keys at all (`/readyz` says, without one). */
export async function authEnabled() {
  try {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    const readiness = await response.json();
    return readiness.auth !== "disabled";
  } catch {
    return true;
  }
}

/** Every epoch record of a job, following `has_more` across pages. */
export async function allMetrics(jobId, signal) {
  let records = [], after = 0;
  for (;;) {
    const page = await getJson(`/v1/jobs/${jobId}/metrics?after_epoch=${after}`, { signal });
    records = records.concat(page.records);
    if (!page.has_more || page.last_epoch === after) return { records, status: page.status };
    after = page.last_epoch;
  }
}
