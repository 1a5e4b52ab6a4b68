// regflow's JavaScript client: a RegflowClient for the JSON API and a <regflow-flow> element
// that renders the neutral screen model. An ES module without dependencies, for modern browsers.
// Served by the app at /static/regflow-client.js; types in regflow-client.d.ts.

const TOKEN_HEADER = "Regflow-Flow-Token";
const RETRY_DELAY_MS = 300; // one retry of a request that never got an answer (network failure)
const INPUT_TYPES = { email: "email", password: "password", tel: "tel" };
const NUMERIC_TYPES = new Set(["code", "customer_id"]);
const DEFAULT_AUTOCOMPLETE = { email: "email", password: "new-password", tel: "tel", code: "one-time-code" };
const TEXTS = {
  ja: {
    network: "通信に失敗しました。もう一度お試しください。",
    kept: "入力したパスワードを保持しています。変更しない場合は空欄のまま「次へ」をクリックしてください。",
    hint: "{min} 文字以上で、小文字、大文字、数字、記号のうち少なくとも {classes} 種類を含めてください。",
  },
  en: {
    network: "The connection failed. Please try again.",
    kept: "The password you typed is kept. Leave this empty and click Next to use it.",
    hint: "At least {min} characters, with at least {classes} of: lower-case letters, upper-case letters, digits, symbols.",
  },
};

// ---- errors ------------------------------------------------------------------------------------

/** An answer that is not a snapshot: `status`, the body's `error` id, `detail` and `text`. */
export class RegflowError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`);
    this.name = "RegflowError";
    this.status = status;
    this.body = body || {};
    this.id = this.body.error || "error";
    this.text = this.body.text || null;
  }
}

/** 409: the flow's state does not take the event; `allowed` lists those it takes. */
export class EventNotAllowedError extends RegflowError {
  constructor(status, body) {
    super(status, body);
    this.name = "EventNotAllowedError";
    this.allowed = this.body.allowed || [];
  }
}

/** 410: the flow ended (or expired); `snapshot` shows how. */
export class FlowGoneError extends RegflowError {
  constructor(status, body) {
    super(status, body);
    this.name = "FlowGoneError";
    this.snapshot = this.body.snapshot || null;
  }
}

/** 429: a limit was reached; try again after `retryAfter` seconds. */
export class RateLimitedError extends RegflowError {
  constructor(status, body, header) {
    super(status, body);
    this.name = "RateLimitedError";
    this.retryAfter = Number(this.body.retry_after ?? header ?? 0);
  }
}

/** No answer at all, also after the retry. */
export class NetworkError extends Error {
  constructor(cause) {
    super("the request got no answer", { cause });
    this.name = "NetworkError";
  }
}

// ---- storage -----------------------------------------------------------------------------------

/** Keeps the flow id and token in memory: a reload starts again (the default). */
export function memoryStorage() {
  let kept = null;
  return { load: () => kept, save: (flow) => { kept = flow; }, clear: () => { kept = null; } };
}

/** Keeps the flow id and token in `sessionStorage` under `key`: a reload resumes the flow. */
export function sessionStorageStore(key = "regflow-flow") {
  return {
    load: () => JSON.parse(sessionStorage.getItem(key) || "null"),
    save: (flow) => sessionStorage.setItem(key, JSON.stringify(flow)),
    clear: () => sessionStorage.removeItem(key),
  };
}

// ---- the client --------------------------------------------------------------------------------

/** One flow at a time over the JSON API; follows hand-overs to the next flow. */
export class RegflowClient {
  constructor({ base = "/", lang = null, storage = memoryStorage(), fetch: fetcher = null } = {}) {
    this.base = base.endsWith("/") ? base : `${base}/`;
    this.lang = lang;
    this.storage = storage;
    this.fetch = fetcher || ((...args) => globalThis.fetch(...args));
  }

  /** The id and token of the flow held, or null. */
  get flow() {
    return this.storage.load();
  }

  /** Start `flow` with `context` (strings); the 201 snapshot. */
  async start(flow, context = {}) {
    const snapshot = await this._request("POST", "api/flows", { flow, context }, {}, false);
    return this._keep(snapshot);
  }

  /** The held flow's snapshot as it is now. */
  async get() {
    return this._keep(await this._request("GET", this._path(""), undefined, this._token(), true));
  }

  /** Send `event` with `data`; one Idempotency-Key per call, kept for its retry. A snapshot
   *  whose screen has errors (422) is returned like any other: its messages say what to fix. */
  async send(event, data = {}) {
    const headers = { ...this._token(), "Idempotency-Key": newKey() };
    const snapshot = await this._request("POST", this._path(`/events/${encodeURIComponent(event)}`),
      { data }, headers, true);
    return this._keep(snapshot);
  }

  /** Forget the held flow. */
  forget() {
    this.storage.clear();
  }

  _path(rest) {
    const held = this.storage.load();
    if (!held) throw new Error("no flow held: start() one first");
    return `api/flows/${encodeURIComponent(held.id)}${rest}`;
  }

  _token() {
    return { [TOKEN_HEADER]: this.storage.load().token };
  }

  _keep(snapshot) {
    // A start and a hand-over bring a flow token; the snapshot's id is then the flow to follow.
    if (snapshot.flow_token) this.storage.save({ id: snapshot.id, token: snapshot.flow_token });
    return snapshot;
  }

  async _request(method, path, body, headers, retry) {
    const url = new URL(this.base + path, globalThis.location ? globalThis.location.href : undefined);
    if (this.lang) url.searchParams.set("lang", this.lang);
    const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
    if (this.lang) init.headers["Accept-Language"] = this.lang;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let reply;
    try {
      reply = await this.fetch(url.href, init);
    } catch (first) {
      if (!retry) throw new NetworkError(first);
      await new Promise((done) => setTimeout(done, RETRY_DELAY_MS));
      try {
        reply = await this.fetch(url.href, init); // the same Idempotency-Key: at most one effect
      } catch (second) {
        throw new NetworkError(second);
      }
    }
    const answer = await reply.json().catch(() => ({}));
    if (reply.ok || (reply.status === 422 && answer.screen)) return answer;
    if (reply.status === 409) throw new EventNotAllowedError(reply.status, answer);
    if (reply.status === 410) throw new FlowGoneError(reply.status, answer);
    if (reply.status === 429) throw new RateLimitedError(reply.status, answer, reply.headers.get("Retry-After"));
    throw new RegflowError(reply.status, answer);
  }
}

function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- fields ------------------------------------------------------------------------------------

/** A constraint pattern that also takes full-width digits (the engine folds them, NFKC), as the
 *  HTML pages widen it. */
export function widenPattern(pattern) {
  const digit = (ch) => ch.length === 1 && ch >= "0" && ch <= "9";
  const wide = (ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0);
  let out = "";
  let inClass = false;
  let inCount = false;
  for (let i = 0; i < pattern.length;) {
    const ch = pattern[i];
    if (ch === "\\" && i + 1 < pattern.length) {
      out += pattern.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (inClass && digit(ch) && pattern[i + 1] === "-" && digit(pattern[i + 2] || "")) {
      const high = pattern[i + 2];
      out += `${ch}-${high}${wide(ch)}-${wide(high)}`;
      i += 3;
      continue;
    }
    if (digit(ch) && !inCount) out += inClass ? ch + wide(ch) : `[${ch}${wide(ch)}]`;
    else out += ch;
    inClass = (inClass || ch === "[") && ch !== "]";
    inCount = (inCount || (ch === "{" && !inClass)) && ch !== "}";
    i += 1;
  }
  return out;
}

function inputAttributes(field) {
  const limits = field.constraints || {};
  const number = (v) => (typeof v === "number" ? String(Math.trunc(v)) : null);
  const exact = limits.length;
  return {
    type: INPUT_TYPES[field.type] || "text",
    inputmode: NUMERIC_TYPES.has(field.type) ? "numeric" : null,
    autocomplete: field.type === "code" ? "one-time-code" : field.autocomplete || DEFAULT_AUTOCOMPLETE[field.type] || null,
    maxlength: number(limits.max_length ?? exact),
    minlength: number(limits.min_length ?? exact),
    pattern: limits.pattern ? widenPattern(String(limits.pattern)) : null,
    spellcheck: field.type !== "text" ? "false" : null,
  };
}

function make(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  if (text !== null) node.textContent = text;
  return node;
}

// ---- the element -------------------------------------------------------------------------------

let instances = 0;
// Importable where there is no DOM (server-side rendering, Node): the client works, the element
// is not defined.
const ElementBase = globalThis.HTMLElement || class {};

/** <regflow-flow flow="sign_in" account="abcd8-01" lang="ja" base="/">: runs a flow and renders
 *  its screens. Events: `snapshot` (every screen shown), `session` (detail.session: a sign-in's
 *  session token), `regflow-error` (detail.error). */
export class RegflowFlowElement extends ElementBase {
  constructor() {
    super();
    this._ids = `rf${++instances}`;
    this.client = null;
    this.snapshot = null;
    this.busy = false;
  }

  connectedCallback() {
    if (this.client) return;
    this.client = new RegflowClient({
      base: this.getAttribute("base") || "/",
      lang: this.getAttribute("lang"),
      storage: this.storage || memoryStorage(),
    });
    this.begin();
  }

  /** Start the flow of the attributes, or resume the one the storage holds. */
  async begin() {
    const context = {};
    const account = this.getAttribute("account");
    if (account) context.account = account;
    const extra = this.getAttribute("context");
    if (extra) Object.assign(context, JSON.parse(extra));
    await this._run(() => (this.client.flow ? this.client.get() : this.client.start(this.getAttribute("flow"), context)), false);
  }

  /** Send `event` with `data` (the form's values when pressed) and show the answer. */
  send(event, data = {}) {
    return this._run(() => this.client.send(event, data), true);
  }

  async _run(call, answered) {
    this.busy = true;
    this.setAttribute("aria-busy", "true");
    this.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      this.show(await call(), answered);
    } catch (error) {
      await this._failed(error);
    } finally {
      this.busy = false;
      this.removeAttribute("aria-busy");
      this.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  }

  async _failed(error) {
    this.dispatchEvent(new CustomEvent("regflow-error", { detail: { error }, bubbles: true, composed: true }));
    if (error instanceof FlowGoneError && error.snapshot) {
      this.show(error.snapshot, true);
    } else if (error instanceof EventNotAllowedError) {
      try {
        this.show(await this.client.get(), true, error.text ? [{ level: "info", text: error.text }] : []);
      } catch (again) {
        this._notice(again);
      }
    } else {
      this._notice(error);
    }
  }

  _notice(error) {
    const texts = TEXTS[this._lang()] || TEXTS.ja;
    const text = error instanceof NetworkError ? texts.network : error.text || error.message;
    const top = this.querySelector(".regflow-messages") || this.appendChild(make("div", { class: "regflow-messages" }));
    top.append(make("p", { class: "msg error", role: "alert" }, text));
  }

  _lang() {
    return (this.snapshot && this.snapshot.lang) || this.getAttribute("lang") || "ja";
  }

  /** Render `snapshot`; after an answer, focus the first field with an error (else the title). */
  show(snapshot, answered = false, notes = []) {
    this.snapshot = snapshot;
    const screen = snapshot.screen;
    const p = this._ids;
    const names = new Set(screen.fields.map((f) => f.name));
    const byField = new Map();
    const top = [...notes];
    for (const message of screen.messages) {
      if (message.level === "error" && names.has(message.field)) {
        if (!byField.has(message.field)) byField.set(message.field, []);
        byField.get(message.field).push(message);
      } else {
        top.push(message);
      }
    }
    const root = make("div", { class: "regflow", lang: snapshot.lang, "data-screen": screen.id, "data-status": snapshot.status });
    root.append(make("h2", { id: `${p}-title`, tabindex: "-1" }, screen.title));
    if (screen.text) root.append(make("p", { class: "text" }, screen.text));
    const messages = make("div", { class: "regflow-messages" });
    for (const message of top) {
      messages.append(make("p", { class: `msg ${message.level}`, role: message.level === "error" ? "alert" : "status" }, message.text));
    }
    root.append(messages);
    const form = make("form", { "aria-labelledby": `${p}-title` });
    for (const field of screen.fields) form.append(this._field(field, byField.get(field.name) || []));
    const actions = [...screen.actions].sort((a, b) => Number(b.primary) - Number(a.primary));
    const bar = make("div", { class: "actions" });
    for (const action of actions) {
      bar.append(make("button", {
        type: "submit", name: "event", value: action.event, class: action.primary ? "primary" : "secondary",
        formnovalidate: !action.primary && screen.fields.length > 0,
      }, action.label));
    }
    form.append(bar);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.busy) return;
      const button = event.submitter || form.querySelector("button.primary");
      if (button) this.send(button.value, this._values(form, screen.fields));
    });
    root.append(form);
    this.replaceChildren(root);
    this.dispatchEvent(new CustomEvent("snapshot", { detail: { snapshot }, bubbles: true, composed: true }));
    if (snapshot.session) {
      this.dispatchEvent(new CustomEvent("session", { detail: { session: snapshot.session, snapshot }, bubbles: true, composed: true }));
    }
    if (answered) {
      const wrong = form.querySelector("[aria-invalid=true]");
      (wrong || root.querySelector(`#${p}-title`)).focus();
    }
  }

  _field(field, errors) {
    const p = this._ids;
    const id = `${p}-f-${field.name}`;
    const texts = TEXTS[this._lang()] || TEXTS.ja;
    const limits = field.constraints || {};
    let hint = null;
    if (field.kept) hint = texts.kept; // leave it empty to use the password kept from the last try
    else if ("classes" in limits && "min_length" in limits) {
      hint = texts.hint.replace("{min}", limits.min_length).replace("{classes}", limits.classes);
    }
    const box = make("div", { class: `field field-${field.type}` });
    const described = [...(hint ? [`${id}-hint`] : []), ...errors.map((_, n) => `${id}-error-${n + 1}`)];
    const common = {
      id, name: field.name,
      "aria-invalid": errors.length ? "true" : null,
      "aria-describedby": described.join(" ") || null,
    };
    if (field.type === "boolean") {
      const input = make("input", { ...common, type: "checkbox", value: "on", checked: Boolean(field.value) });
      const label = make("label", { for: id }, field.label);
      box.append(input, label);
    } else {
      const required = field.required && !field.kept;
      const input = make("input", { ...common, ...inputAttributes(field), required });
      if (field.type !== "password" && field.value !== null && field.value !== undefined) input.value = String(field.value);
      box.append(make("label", { for: id }, field.label), input);
    }
    if (hint) box.append(make("p", { id: `${id}-hint`, class: "hint" }, hint));
    errors.forEach((message, n) => {
      box.append(make("p", { id: `${id}-error-${n + 1}`, class: "msg error" }, message.text));
    });
    return box;
  }

  _values(form, fields) {
    const data = {};
    for (const field of fields) {
      const input = form.elements.namedItem(field.name);
      if (!input) continue;
      data[field.name] = field.type === "boolean" ? input.checked : input.value;
    }
    return data;
  }
}

if (globalThis.customElements && !customElements.get("regflow-flow")) {
  customElements.define("regflow-flow", RegflowFlowElement);
}
