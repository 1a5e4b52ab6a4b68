// Type declarations of regflow-client.js: the JSON API's snapshot, the client and
// the <regflow-flow> element.

export interface Field {
  name: string;
  type: "text" | "email" | "password" | "code" | "tel" | "customer_id" | "boolean" | string;
  label: string;
  required: boolean;
  value: string | boolean | null;
  constraints: { min_length?: number; max_length?: number; length?: number; pattern?: string; classes?: number; [key: string]: unknown };
  autocomplete: string | null;
  kept: boolean;
}

export interface Action {
  event: string;
  label: string;
  primary: boolean;
}

export interface Message {
  id: string;
  level: "error" | "warning" | "info";
  text: string;
  field: string | null;
  params: Record<string, unknown>;
}

export interface Screen {
  id: string;
  title: string;
  text: string | null;
  fields: Field[];
  actions: Action[];
  messages: Message[];
}

export interface Snapshot {
  id: string;
  flow: string;
  state: string;
  status: "active" | "completed" | "cancelled" | "failed" | "expired" | string;
  version: number;
  expires_at: string | null;
  timers: { event: string; at: string }[];
  screen: Screen;
  lang: "ja" | "en" | string;
  flow_token?: string;
  session?: string;
  continue_with?: { flow: string; id: string; [key: string]: string };
}

/** The flow a client holds: its id and its token (header Regflow-Flow-Token). */
export interface HeldFlow {
  id: string;
  token: string;
}

/** Where a client keeps the flow it holds. */
export interface FlowStorage {
  load(): HeldFlow | null;
  save(flow: HeldFlow): void;
  clear(): void;
}

export function memoryStorage(): FlowStorage;
export function sessionStorageStore(key?: string): FlowStorage;
export function widenPattern(pattern: string): string;

export interface ErrorBody {
  error: string;
  detail: string;
  text?: string;
  [key: string]: unknown;
}

export class RegflowError extends Error {
  readonly status: number;
  readonly body: ErrorBody;
  /** The error's stable id (`event_not_allowed`, `flow_gone`, `rate_limited` …). */
  readonly id: string;
  /** The error's text in the asked language, when it has one. */
  readonly text: string | null;
}

/** 409: the state does not take the event. */
export class EventNotAllowedError extends RegflowError {
  readonly allowed: string[];
}

/** 410: the flow ended or expired. */
export class FlowGoneError extends RegflowError {
  readonly snapshot: Snapshot | null;
}

/** 429: try again after `retryAfter` seconds. */
export class RateLimitedError extends RegflowError {
  readonly retryAfter: number;
}

/** No answer, also after the one retry. */
export class NetworkError extends Error {}

export interface ClientOptions {
  /** Where the app is mounted ("/" by default). */
  base?: string;
  /** "ja" or "en" (sent as ?lang= and Accept-Language); else the browser's languages. */
  lang?: string | null;
  storage?: FlowStorage;
  fetch?: typeof fetch;
}

export class RegflowClient {
  constructor(options?: ClientOptions);
  readonly base: string;
  lang: string | null;
  readonly storage: FlowStorage;
  /** The flow held (the last started or handed over to), or null. */
  readonly flow: HeldFlow | null;
  /** POST /api/flows with {flow, context}: the 201 snapshot; the flow and its token are kept. */
  start(flow: string, context?: Record<string, string>): Promise<Snapshot>;
  /** GET /api/flows/{id}. Throws FlowGoneError when it expired. */
  get(): Promise<Snapshot>;
  /** POST /api/flows/{id}/events/{event} with a new Idempotency-Key (kept for its one retry).
   *  Resolves with the snapshot also on 422 (its screen carries the errors); follows a hand-over. */
  send(event: string, data?: Record<string, string | boolean | null>): Promise<Snapshot>;
  forget(): void;
}

export interface SnapshotEventDetail {
  snapshot: Snapshot;
}

export interface SessionEventDetail {
  session: string;
  snapshot: Snapshot;
}

/** `<regflow-flow flow="sign_in" account="abcd8-01" lang="ja" base="/">` */
export class RegflowFlowElement extends HTMLElement {
  client: RegflowClient | null;
  snapshot: Snapshot | null;
  /** Set before the element is connected to keep the flow elsewhere than in memory. */
  storage?: FlowStorage;
  begin(): Promise<void>;
  send(event: string, data?: Record<string, string | boolean | null>): Promise<void>;
  show(snapshot: Snapshot, answered?: boolean): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "regflow-flow": RegflowFlowElement;
  }
  interface HTMLElementEventMap {
    snapshot: CustomEvent<SnapshotEventDetail>;
    session: CustomEvent<SessionEventDetail>;
    "regflow-error": CustomEvent<{ error: Error }>;
  }
}
