// Every call the dashboard makes to errand's REST API goes through here: it
// adds the bearer token (kept in this tab's session storage, never in the
// page's URL or in local storage), turns error bodies into ApiError, and
// tells the page whether the server is reachable and whether it wants a
// token, so that one banner can say so and clear itself once a call works.

export type TaskState =
  | "scheduled"
  | "pending"
  | "active"
  | "retrying"
  | "succeeded"
  | "dead"
  | "cancelled";

export const STATES: TaskState[] = [
  "scheduled",
  "pending",
  "active",
  "retrying",
  "succeeded",
  "dead",
  "cancelled",
];

export interface Task {
  id: string;
  type: string;
  queue: string;
  state: TaskState;
  priority: number;
  attempt: number;
  max_attempts: number;
  payload?: unknown;
  result?: unknown;
  progress: { percent: number; message: string } | null;
  last_error: string | null;
  run_at: string | null;
  timeout_ms: number;
  unique_key: string | null;
  group_id: string | null;
  trace_id: string | null;
  request_id: string | null;
  cancel_requested: boolean;
  node: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  // Only on GET /v1/tasks/{id}: attempts that did not succeed, oldest first.
  past_attempts?: PastAttempt[];
}

export interface PastAttempt {
  attempt: number;
  node: string | null;
  started_at: string | null;
  ended_at: string;
  outcome: "retrying" | "dead" | "cancelled" | "lost";
  error: string;
}

export interface Queue {
  name: string;
  paused: boolean;
  counts: Record<TaskState, number>;
  workers: number;
  busy: number;
}

export interface NodeInfo {
  id: string;
  role: string;
  version: string;
  started_at: string;
  last_seen: string;
  queues: { name: string; workers: number; busy: number }[];
  busy: number;
  self: boolean;
}

export interface Schedule {
  name: string;
  kind: "every" | "cron";
  every_ms?: number;
  cron?: string;
  type: string;
  queue: string;
  last_fired_at: string | null;
  next_fire_at: string | null;
  nodes: string[];
}

export interface Circuit {
  target: string;
  state: "closed" | "open" | "half_open";
  failures: number;
  retry_in_ms: number;
}

export interface QueueStats {
  name: string;
  succeeded: number[];
  failed: number[];
  wait_p50_ms: (number | null)[];
  wait_p95_ms: (number | null)[];
  run_p50_ms: (number | null)[];
  run_p95_ms: (number | null)[];
}

export interface Stats {
  start: number;
  end: number;
  window_s: number;
  nodes: string[];
  queues: QueueStats[];
}

export interface BulkResult {
  action: string;
  results: { id: string; outcome: string }[];
  counts: Record<string, number>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// What the banner shows: null when the last call went through.
export type Trouble =
  | { kind: "unreachable" }
  | { kind: "unavailable"; message: string }
  | { kind: "token"; refused: boolean };

type Listener = (t: Trouble | null) => void;

const TOKEN_KEY = "errand.token";
let trouble: Trouble | null = null;
const listeners = new Set<Listener>();

function setTrouble(t: Trouble | null): void {
  if (JSON.stringify(t) === JSON.stringify(trouble)) return;
  trouble = t;
  for (const l of listeners) l(t);
}

export function onTrouble(l: Listener): () => void {
  listeners.add(l);
  l(trouble);
  return () => listeners.delete(l);
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string): void {
  sessionStorage.setItem(TOKEN_KEY, t);
  setTrouble(null);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// Sorts out an answer: the JSON body, or an ApiError (and the banner's
// state). Shared with the event stream, which reads its body itself.
export async function check(res: Response): Promise<Response> {
  if (res.status === 401) {
    setTrouble({ kind: "token", refused: token() !== null });
    throw new ApiError(401, "unauthorized", "the server wants a token");
  }
  if (res.status === 503) {
    const body = await res.json().catch(() => null);
    const message = body?.error?.message ?? "the server is not ready";
    setTrouble({ kind: "unavailable", message });
    throw new ApiError(503, body?.error?.code ?? "unavailable", message);
  }
  setTrouble(null);
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new ApiError(
      res.status,
      body?.error?.code ?? "http_" + res.status,
      body?.error?.message ?? res.statusText,
    );
  }
  return res;
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if ((e as Error).name !== "AbortError") setTrouble({ kind: "unreachable" });
    throw e;
  }
  await check(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) =>
  request<T>("GET", path, undefined, signal);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {});
export const del = (path: string) => request<void>("DELETE", path);

export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}
