// The sse-relay cockpit: one stream shared by every tab of this URL, a turn at a time, with
// faults a person can fire mid-turn, and a naive EventSource on the same stream beside it.
//
// Multi-turn: the stream key S comes from `?key=` (or this browser's last one). Turn n streams on
// the key `S.n`; a turn ends with `done`, after which the server takes no more entries, so every
// tab opens `S.(n+1)` as soon as it has seen `done`. Send appends the prompt to the turn's stream
// (every tab shows it, even one opened later) and then starts the turn, only after `open()`
// resolved. A tab opened later finds the first turn that is not done.
//
// What the end-to-end test reads is `window.cockpit.snapshot()`.
import { RelayStream } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const KEY_STORE = "sse-relay-cockpit/key";
/** Silence (no frame, no ping) after which a connection counts as stalled; the demo server pings every second. */
const HEARTBEAT_MS = clampInt(params.get("heartbeat"), 500, 120_000) ?? 4000;
const SEAM_FRAMES = 5;
const SLOW_JOIN_MS = 1500;
const HISTORY_TURNS = 5;
const EVENTS = ["prompt", "token"];
const DEFAULT_PROMPT = "How does sse-relay keep a streamed answer whole?";
const TAB = Math.random().toString(16).slice(2, 6);

function clampInt(value, min, max) {
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : null;
}

/** The stream key of this cockpit: `?key=`, else the one this browser used last, else a new one. */
function sessionKey() {
  const valid = (k) => typeof k === "string" && /^[A-Za-z0-9_-]{1,100}$/.test(k);
  let key = params.get("key");
  if (!valid(key)) {
    key = localStorage.getItem(KEY_STORE);
    if (!valid(key)) key = newKey();
    params.set("key", key);
    history.replaceState(null, "", `${location.pathname}?${params}`);
  }
  localStorage.setItem(KEY_STORE, key);
  return key;
}

function newKey() {
  return `cockpit-${Math.random().toString(16).slice(2, 8)}`;
}

const SESSION = sessionKey();
const turnKey = (n) => `${SESSION}.${n}`;

// ---------------------------------------------------------------------------------------------
// State, and what the test reads

const state = {
  turnNo: 0,
  key: null,
  stream: null, // the current turn's RelayStream, once open() resolved
  role: null,
  sending: false,
  resetting: false,
  turns: new Map(), // key -> record
  server: null,
  log: [],
  totals: null, // stats of the finished turns, summed
};

const COUNTERS = ["delivered", "duplicates", "reconnects", "resets", "leaderChanges", "malformed", "stalls", "gaps", "connections"];

function addStats(a, b) {
  return Object.fromEntries(COUNTERS.map((f) => [f, (a?.[f] ?? 0) + (b?.[f] ?? 0)]));
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "152 delivered · 5 duplicates dropped · 1 reconnect": the counters that say what happened. */
function statsLine(s) {
  const parts = [`${s.delivered} delivered`];
  if (s.duplicates) parts.push(plural(s.duplicates, "duplicate dropped", "duplicates dropped"));
  if (s.reconnects) parts.push(plural(s.reconnects, "reconnect"));
  if (s.resets) parts.push(plural(s.resets, "reset"));
  if (s.malformed) parts.push(`${s.malformed} malformed ignored`);
  if (s.stalls) parts.push(plural(s.stalls, "stall"));
  if (s.gaps) parts.push(plural(s.gaps, "gap"));
  if (s.leaderChanges) parts.push(plural(s.leaderChanges, "leader change"));
  return parts.join(" · ");
}

function plainStats(stream) {
  const s = stream.stats;
  const fields = ["delivered", "duplicates", "reconnects", "resets", "gaps", "malformed", "stalls", "connections", "leaderChanges", "rejectedMessages"];
  return Object.fromEntries(fields.map((f) => [f, s[f]]));
}

function streamSnapshot(stream) {
  return {
    role: stream.role,
    state: stream.state,
    epoch: stream.epoch,
    cursor: stream.cursor ? { id: stream.cursor.id, epoch: stream.cursor.epoch } : null,
    stats: plainStats(stream),
  };
}

window.cockpit = {
  session: SESSION,
  tab: TAB,
  snapshot() {
    const turns = {};
    for (const [key, r] of state.turns) {
      turns[key] = {
        n: r.n,
        relay: r.relay,
        naive: r.naive,
        relayDone: r.relayDone,
        naiveDone: r.naiveDone,
        naiveReconnects: r.naiveClient?.reconnects ?? 0,
        final: r.final,
        prompt: r.prompt,
        verdict: r.relayView?.verdict() ?? null,
        naiveVerdict: r.naiveView?.verdict() ?? null,
      };
    }
    return {
      session: SESSION,
      tab: TAB,
      turnNo: state.turnNo,
      key: state.key,
      opened: state.stream !== null,
      canSend: canSend(),
      stream: state.stream ? streamSnapshot(state.stream) : null,
      role: state.role,
      turns,
      log: state.log.map((l) => l.text),
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(method, path, body) {
  const response = await fetch(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.trim()}`);
  return text ? JSON.parse(text) : null;
}

const shortEpoch = (e) => (e ? String(e) : "–");

const channel = "BroadcastChannel" in window ? new BroadcastChannel(`sse-relay-cockpit/${SESSION}`) : null;
channel?.addEventListener("message", (e) => {
  if (e.data && typeof e.data.text === "string") log(`tab ${String(e.data.tab).slice(0, 8)}: ${e.data.text}`.slice(0, 300), "fault");
});

/** Adds a line to the event log (and tells the other tabs when `share`). */
function log(text, kind = "info", share = false) {
  const at = new Date();
  const time = `${at.toTimeString().slice(0, 8)}.${String(at.getMilliseconds()).padStart(3, "0").slice(0, 1)}`;
  state.log.push({ time, text, kind });
  if (state.log.length > 200) state.log.shift();
  const item = el("li", `log-${kind}`);
  item.append(el("time", "", time), el("span", "", text));
  const list = $("log");
  list.prepend(item);
  while (list.children.length > 60) list.lastChild.remove();
  if (share) channel?.postMessage({ tab: TAB, text });
}

// ---------------------------------------------------------------------------------------------
// A turn, rendered: the prompt, the answer token by token, and a verdict

class TurnView {
  constructor(container, n, key, { note } = {}) {
    this.container = container;
    this.el = el("article", "turn streaming");
    const head = el("header", "turn-head");
    head.append(el("span", "turn-no", `turn ${n}`), el("code", "turn-key", key));
    if (note) head.append(el("span", "turn-note", note));
    this.promptEl = el("div", "prompt empty", "no prompt yet");
    this.answer = el("p", "answer");
    this.foot = el("div", "turn-foot");
    this.el.append(head, this.promptEl, this.answer, this.foot);
    this.clear();
    const stick = this.nearBottom();
    container.append(this.el);
    if (stick) container.scrollTop = container.scrollHeight;
  }

  clear() {
    this.seen = new Set();
    this.rendered = [];
    this.junk = 0;
    this.max = -1;
    this.expected = null;
    this.finished = false;
    this.answer.replaceChildren();
    this.promptEl.className = "prompt empty";
    this.promptEl.textContent = "no prompt yet";
  }

  nearBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }

  /** Runs a DOM change and keeps the transcript scrolled to the end if it was there. */
  grow(change) {
    const stick = this.nearBottom();
    change();
    if (stick) this.container.scrollTop = this.container.scrollHeight;
  }

  prompt(data) {
    let p;
    try {
      p = JSON.parse(data);
    } catch {
      return this.noise();
    }
    this.grow(() => {
      if (Number.isInteger(p.tokens)) this.expected = p.tokens;
      this.promptEl.className = "prompt";
      this.promptEl.replaceChildren(el("span", "who", p.tab === TAB ? "you (this tab)" : `you (tab ${p.tab})`), el("span", "text", String(p.text ?? "")));
    });
  }

  token(data) {
    let token;
    try {
      token = JSON.parse(data);
    } catch {
      // not JSON
    }
    if (!token || !Number.isInteger(token.i)) return this.noise();
    const { i, text } = token;
    this.grow(() => {
      if (i > this.max + 1) {
        const gap = el("span", "gap", "⋯");
        gap.title = `missing token${i - this.max > 2 ? "s" : ""} ${this.max + 1}${i - this.max > 2 ? `–${i - 1}` : ""}`;
        this.answer.append(gap);
      }
      const span = el("span", this.seen.has(i) ? "tok dup" : "tok", String(text ?? ""));
      if (this.seen.has(i)) span.title = `token ${i} again`;
      this.answer.append(span);
      this.seen.add(i);
      this.rendered.push(i);
      this.max = Math.max(this.max, i);
    });
  }

  noise() {
    this.junk += 1;
    this.grow(() => {
      const junk = el("span", "junk", "�");
      junk.title = "a frame that is not a token, rendered anyway";
      this.answer.append(junk);
    });
  }

  marker(symbol, title) {
    this.grow(() => {
      const mark = el("span", "marker", symbol);
      mark.title = title;
      this.answer.append(mark);
    });
  }

  /** The journal restarted (new epoch): the turn starts over. */
  restart(epoch) {
    this.clear();
    this.foot.replaceChildren(el("span", "notice", `↺ journal reset: epoch ${shortEpoch(epoch)}; the turn starts over`));
  }

  finish(doneData, { note, stats } = {}) {
    this.finished = true;
    try {
      const done = JSON.parse(doneData);
      if (Number.isInteger(done?.tokens)) this.expected = done.tokens;
    } catch {
      // no count in done
    }
    this.el.classList.remove("streaming");
    const v = this.verdict();
    this.grow(() => {
      const line = el("span", `verdict ${v.exact ? "ok" : "bad"}`, `${v.exact ? "✓" : "✗"} ${v.text}`);
      this.foot.replaceChildren(line);
      if (stats) this.foot.append(el("span", "turn-stats", `as ${stats.role}: ${statsLine(stats.stats)}`));
      if (note) this.foot.append(el("span", "notice", note));
    });
  }

  /** Whether the rendered answer is the turn: every token once, in order, nothing else. */
  verdict() {
    const n = this.expected;
    const repeated = this.rendered.length - this.seen.size;
    const missing = n === null ? 0 : n - [...this.seen].filter((i) => i < n).length;
    const inOrder = this.rendered.every((v, k) => v === k);
    const exact = n !== null && this.rendered.length === n && inOrder && this.junk === 0;
    if (exact) return { exact, text: `${n} of ${n} tokens, each once, in order` };
    const parts = [];
    if (missing > 0) parts.push(`${missing} missing`);
    if (repeated > 0) parts.push(`${repeated} repeated`);
    if (this.junk > 0) parts.push(`${this.junk} junk`);
    if (!parts.length && !inOrder) parts.push("out of order");
    const of = n === null ? "" : ` for ${n}`;
    return { exact, text: `${this.rendered.length} tokens rendered${of}${parts.length ? `: ${parts.join(", ")}` : ""}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The naive client: a plain EventSource on the same stream, as pages often do it

class NaiveClient {
  constructor(key, record, view) {
    this.key = key;
    this.record = record;
    this.view = view;
    this.reconnects = 0;
    this.closed = false;
    this.status = "connecting";
    this.lastFrameAt = null;
    this.connect();
  }

  connect() {
    // No cursor: a new EventSource starts over, from the start of the journal.
    const source = new EventSource(`/streams/${this.key}/events`);
    this.source = source;
    this.status = "connecting";
    source.onopen = () => {
      if (this.source === source) this.status = "open";
    };
    const on = (type, render) =>
      source.addEventListener(type, (e) => {
        if (this.source !== source || this.closed) return;
        this.lastFrameAt = performance.now();
        this.record.naive.push({ id: e.lastEventId, event: type, data: e.data });
        render(e.data);
      });
    on("prompt", (data) => this.view.prompt(data));
    on("token", (data) => this.view.token(data));
    on("done", (data) => {
      this.record.naiveDone = true;
      this.close("done");
      this.view.finish(data);
    });
    source.onerror = () => {
      if (this.source !== source || this.closed) return;
      // The app-level reconnect: close, and a new EventSource after a pause, without a cursor.
      source.close();
      this.status = "reconnecting";
      this.reconnects += 1;
      this.view.marker("⟲", "the connection failed: a new EventSource, without a cursor");
      if (this.reconnects > 30) {
        this.close("gave up");
        return;
      }
      setTimeout(() => {
        if (!this.closed) this.connect();
      }, 500);
    };
  }

  close(status) {
    this.closed = true;
    this.status = status;
    this.source?.close();
  }

  /** The relay moved on to the next turn: give this one a moment, then stop it. */
  abandonAfter(ms) {
    setTimeout(() => {
      if (this.closed) return;
      const stalled = this.status === "open";
      this.close(stalled ? "stalled" : "gave up");
      this.view.finish(null, { note: stalled ? "never got done: its connection stalled, and nothing told it" : "never got done" });
    }, ms);
  }

  describe() {
    const v = this.view;
    const repeated = v.rendered.length - v.seen.size;
    const missing = v.max + 1 - [...v.seen].filter((i) => i <= v.max).length;
    // Mid-turn silence is what a stall looks like from here: nothing tells this client.
    const silent = this.lastFrameAt === null ? 0 : (performance.now() - this.lastFrameAt) / 1000;
    const quiet = !this.closed && v.expected !== null && !v.finished && silent > 2;
    // What went wrong first, so a narrow panel still shows it.
    const problems = [
      [repeated, `${repeated} repeated`],
      [missing, `${missing} missing`],
      [v.junk, `${v.junk} junk`],
      [quiet, `silent for ${silent.toFixed(0)} s`],
      [this.reconnects, plural(this.reconnects, "reconnect")],
    ];
    const parts = [`${v.rendered.length} rendered`, ...problems.filter(([n]) => n).map(([, text]) => text), this.status];
    for (const [n, text] of problems) if (!n && typeof n === "number") parts.push(text);
    return { text: `turn ${this.record.n}: ${parts.join(" · ")}`, bad: repeated > 0 || missing > 0 || v.junk > 0 || quiet };
  }
}

// ---------------------------------------------------------------------------------------------
// The turns

/** The first turn of this stream that is not done. */
async function findTurn() {
  for (let n = 1; ; n += 1) {
    const stats = await api("GET", `/streams/${turnKey(n)}/stats`);
    if (!stats.done) return n;
  }
}

/** Earlier turns, from the journal: a late attach gets the whole turn. */
async function loadHistory(upto) {
  const from = Math.max(1, upto - HISTORY_TURNS);
  if (from > 1) $("relay-transcript").append(el("p", "history-note", `${from - 1} earlier turn${from > 2 ? "s" : ""} not shown`));
  if (upto > 1) $("naive-transcript").append(el("p", "history-note", "turns before this tab opened are in the sse-relay panel"));
  for (let n = from; n < upto; n += 1) {
    const key = turnKey(n);
    const view = new TurnView($("relay-transcript"), n, key, { note: "from the journal" });
    try {
      const stream = await RelayStream.open(`/streams/${key}/events`, { key: `${key}/history/${TAB}`, events: EVENTS, shareAcrossTabs: false });
      for await (const frame of stream) {
        if (frame.event === "prompt") view.prompt(frame.data);
        else if (frame.event === "token") view.token(frame.data);
        else if (frame.event === "done") view.finish(frame.data);
      }
    } catch (err) {
      view.finish(null, { note: `could not load: ${err.name}` });
    }
  }
}

async function openStream(key) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await RelayStream.open(`/streams/${key}/events`, {
        key,
        events: EVENTS,
        contiguousIds: true,
        heartbeatTimeoutMs: HEARTBEAT_MS,
      });
    } catch (err) {
      log(`open() rejected (${err.name}: ${err.message}); nothing was dispatched; retrying`, "bad");
      setGate(`open() rejected: ${err.name}. Send stays off; retrying…`, "bad");
      await sleep(Math.min(10_000, 1000 * attempt));
    }
  }
}

/** Streams turn `n` until `done`; resolves whether it finished, and this tab's role in it. */
async function runTurn(n) {
  const key = turnKey(n);
  const record = { n, key, relay: [], naive: [], previousEpochs: [], epoch: null, relayDone: false, naiveDone: false, final: null, prompt: null };
  state.turns.set(key, record);
  state.turnNo = n;
  state.key = key;
  $("turn-no").textContent = String(n);
  $("turn-key").textContent = key;
  record.relayView = new TurnView($("relay-transcript"), n, key);
  record.naiveView = new TurnView($("naive-transcript"), n, key);
  record.naiveClient = new NaiveClient(key, record, record.naiveView);
  pollServer();
  setGate("waiting for the server's <code>ready</code>… Send stays off until <code>open()</code> resolves.");

  const stream = await openStream(key);
  state.stream = stream;
  const ready = streamSnapshot(stream);
  log(`turn ${n}: open() resolved as ${ready.role}, epoch ${shortEpoch(ready.epoch)}: dispatching is safe`, "good");
  stream.on("ready", (r) => log(`ready: tail ${r.tail ?? "∅"}, epoch ${shortEpoch(r.epoch)}`));
  stream.on("reset", (r) => log(`reset: epoch ${shortEpoch(r.previousEpoch)} → ${shortEpoch(r.epoch)}; the turn is delivered again from its start`, "warn"));
  stream.on("reconnecting", (r) => log(`reconnecting (${r.cause}), attempt ${r.attempt}${r.delayMs === null ? "" : ` in ${Math.round(r.delayMs)} ms`}`, "warn"));
  stream.on("gap", (g) => log(`gap after ${g.after}: next ${g.next}`, "bad"));
  stream.on("malformed", (m) => log(`malformed input ignored: ${m.kind}${m.data ? ` (${m.data.length} bytes)` : ""}`, "warn"));
  stream.on("error", (e) => log(`stream error: ${e.name}: ${e.message}`, "bad"));
  refresh();

  let done = false;
  try {
    for await (const frame of stream) {
      // `cursor` is the frame just handed over, so its epoch is this frame's epoch.
      const epoch = stream.cursor?.epoch ?? null;
      if (record.epoch !== null && epoch !== record.epoch) {
        record.previousEpochs.push({ epoch: record.epoch, frames: record.relay });
        record.relay = [];
        record.prompt = null;
        record.relayView.restart(epoch);
      }
      record.epoch = epoch;
      record.relay.push({ id: frame.id, event: frame.event, data: frame.data });
      if (frame.event === "prompt") {
        record.prompt = frame.data;
        record.relayView.prompt(frame.data);
      } else if (frame.event === "token") {
        record.relayView.token(frame.data);
      } else if (frame.event === "done") {
        done = true;
        record.relayView.finish(frame.data, { stats: streamSnapshot(stream) });
      }
      refreshSend();
    }
  } catch (err) {
    log(`turn ${n} failed: ${err.name}: ${err.message}`, "bad");
  }
  record.final = streamSnapshot(stream);
  record.relayDone = done;
  state.totals = addStats(state.totals, record.final.stats);
  state.stream = null;
  if (done) {
    const v = record.relayView.verdict();
    log(`turn ${n} done: ${v.text}`, v.exact ? "good" : "bad");
  }
  record.naiveClient.abandonAfter(done ? 2500 : 0);
  return { done, role: record.final.role };
}

async function main() {
  $("session-key").textContent = SESSION;
  $("tab-id").textContent = `tab ${TAB}`;
  document.title = `sse-relay cockpit · ${SESSION}`;
  const here = new URL(location.href);
  here.searchParams.set("key", SESSION);
  $("new-tab").href = here.href;
  const fresh = new URL(location.href);
  fresh.searchParams.set("key", newKey());
  $("new-session").href = fresh.href;

  let n;
  try {
    n = await findTurn();
  } catch (err) {
    setGate(`the server does not answer (${err.message}). Is it running?`, "bad");
    throw err;
  }
  log(`stream ${SESSION}: this tab is ${TAB}; turn ${n} is next`);
  await loadHistory(n);
  for (;;) {
    const { done, role } = await runTurn(n);
    if (done) n += 1;
    // The leader of a turn opens the next one first, so it keeps its role: a follower lets it.
    await sleep(done ? (role === "follower" ? 300 : 0) : 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// Send

function currentRecord() {
  return state.key ? state.turns.get(state.key) : undefined;
}

function canSend() {
  const record = currentRecord();
  return Boolean(state.stream && record && !record.prompt && !record.relayDone && !state.sending && !state.resetting);
}

/**
 * Appends the prompt to the turn's stream, then starts the turn. Called only once this tab's
 * `open()` on that stream resolved. A Web Lock and the journal's length make one tab send.
 */
async function dispatchTurn(key, prompt) {
  const body = async () => {
    const stats = await api("GET", `/streams/${key}/stats`);
    if (stats.length > 0 || stats.done) {
      log("this turn was already sent by another tab", "warn");
      return false;
    }
    await api("POST", `/streams/${key}/append`, { event: "prompt", data: JSON.stringify(prompt) });
    await api("POST", `/streams/${key}/turns?tokens=${prompt.tokens}&rateHz=${prompt.rateHz}`);
    return true;
  };
  return navigator.locks ? navigator.locks.request(`sse-relay-cockpit/${SESSION}/send`, body) : body();
}

async function send(event) {
  event.preventDefault();
  if (!canSend()) return;
  const key = state.key;
  const text = $("prompt").value.trim() || DEFAULT_PROMPT;
  const tokens = clampInt($("tokens").value, 1, 5000) ?? Math.min(400, Math.max(20, text.length * 2));
  const rateHz = clampInt($("rate").value, 1, 2000) ?? 20;
  state.sending = true;
  refreshSend();
  try {
    if (await dispatchTurn(key, { text, tokens, rateHz, tab: TAB })) {
      $("prompt").value = "";
      log(`sent turn ${state.turns.get(key)?.n}: ${tokens} tokens at ${rateHz}/s`, "good", true);
    }
  } catch (err) {
    log(`send failed: ${err.message}`, "bad");
  } finally {
    state.sending = false;
    refreshSend();
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

const FAULTS = {
  cut: { query: () => "cut=1", said: (a) => `✂ cut: ${a.affected} connection${a.affected === 1 ? "" : "s"} ended` },
  stall: { query: () => "stall=1", said: (a) => `❚❚ stall: ${a.affected} connection${a.affected === 1 ? "" : "s"} silenced` },
  garbage: { query: () => "garbage=1", said: (a) => `☣ garbage sent on ${a.affected} connection${a.affected === 1 ? "" : "s"}` },
  dup: { query: (next) => `dupSeam=${SEAM_FRAMES}&next=${next}`, said: (a, next) => `❐ seam duplicate (${SEAM_FRAMES} frames) armed for the next ${next} connection${next === 1 ? "" : "s"}` },
  slow: { query: (next) => `joinDelayMs=${SLOW_JOIN_MS}&next=${next}`, said: (a, next) => `◷ slow join (${SLOW_JOIN_MS} ms) armed for the next ${next} connection${next === 1 ? "" : "s"}` },
};

async function fault(kind) {
  const key = state.key;
  if (!key) return;
  const n = state.turns.get(key)?.n;
  try {
    if (kind === "reset") return await resetJournal(key);
    const spec = FAULTS[kind];
    // Armed faults: as many next connections as are open now (every one of them reconnects
    // after a cut).
    const next = kind === "dup" || kind === "slow" ? Math.max(1, (await api("GET", `/streams/${key}/stats`)).connections) : 1;
    const answer = await api("POST", `/streams/${key}/faults?${spec.query(next)}`);
    log(`${spec.said(answer, next)} (turn ${n})`, "fault", true);
    pollServer();
  } catch (err) {
    log(`fault failed: ${err.message}`, "bad");
  }
}

/** Wipes the turn's journal (new epoch), then regenerates the same prompt once this tab is on the new epoch. */
async function resetJournal(key) {
  const record = state.turns.get(key);
  const prompt = record?.prompt;
  const stream = state.stream;
  state.resetting = true;
  refreshSend();
  try {
    const answer = await api("POST", `/streams/${key}/reset`);
    log(`↺ journal of turn ${record?.n} reset: epoch ${shortEpoch(answer.epoch)}${prompt ? "; regenerating the prompt" : ""}`, "fault", true);
    if (!prompt || !stream || state.key !== key) return;
    // Dispatch again only once this tab's stream is on the new epoch (its ready came).
    const deadline = performance.now() + 10_000;
    while (stream.epoch !== answer.epoch && performance.now() < deadline) await sleep(50);
    await dispatchTurn(key, JSON.parse(prompt));
  } finally {
    state.resetting = false;
    refreshSend();
  }
}

// ---------------------------------------------------------------------------------------------
// Live status

function setGate(html, kind = "") {
  const gate = $("gate");
  gate.className = `gate ${kind}`;
  gate.innerHTML = html;
}

function refreshSend() {
  const ok = canSend();
  const button = $("send");
  button.disabled = !ok;
  const record = currentRecord();
  if (!state.stream) return;
  if (state.sending) setGate("dispatching…");
  else if (state.resetting) setGate("resetting the journal…", "warn");
  else if (ok) {
    const who = state.stream.role === "follower" ? "the leader tab's connection is ready" : "the server joined (ready)";
    setGate(`✓ <code>open()</code> resolved: ${who}. Dispatching from this tab is safe.`, "good");
  } else if (record?.prompt) {
    let from = "";
    try {
      const tab = JSON.parse(record.prompt).tab;
      from = tab === TAB ? " (sent from this tab)" : ` (sent from tab ${tab})`;
    } catch {
      // not ours
    }
    setGate(`turn ${record.n} is streaming${from}…`);
  }
}

const ROLE_NOTES = {
  leader: "owns the stream's only connection",
  follower: "gets the leader tab's frames over BroadcastChannel",
  standalone: "its own connection, no sharing",
};

function dl(target, rows) {
  target.replaceChildren(
    ...rows.flatMap(([name, value, cls]) => {
      const dt = el("dt", "", name);
      const dd = el("dd", cls ?? "", String(value));
      return [dt, dd];
    }),
  );
}

function refresh() {
  const stream = state.stream;
  const record = currentRecord();
  const snap = stream ? streamSnapshot(stream) : record?.final ?? null;
  if (snap) {
    if (snap.role !== state.role) {
      if (state.role && state.role !== "none") log(`role: ${state.role} → ${snap.role}`, "warn");
      state.role = snap.role;
      const badge = $("role");
      badge.className = `role role-${snap.role}`;
      badge.querySelector(".role-name").textContent = snap.role;
      badge.querySelector(".role-note").textContent = ROLE_NOTES[snap.role] ?? "";
    }
    const s = snap.stats;
    const all = addStats(state.totals, stream ? s : null);
    const hot = (v) => (v > 0 ? "hot" : "");
    const rows = [
      ["role", snap.role, `role-text-${snap.role}`],
      ["connection", snap.state, `state-${snap.state}`],
      ["cursor", snap.cursor?.id ?? "–"],
      ["epoch", shortEpoch(snap.epoch)],
    ];
    const counters = [
      ["delivered", "delivered"],
      ["duplicates dropped", "duplicates"],
      ["reconnects", "reconnects"],
      ["resets", "resets"],
      ["leader changes", "leaderChanges"],
      ["malformed ignored", "malformed"],
      ["stalls", "stalls"],
      ["gaps", "gaps"],
      ["connections opened", "connections"],
    ];
    const table = $("tab-stats");
    const row = (cells) => {
      const tr = el("tr");
      for (const [text, cls, tag] of cells) tr.append(el(tag ?? "td", cls ?? "", String(text)));
      return tr;
    };
    table.replaceChildren(
      ...rows.map(([name, value, cls]) => {
        const tr = row([[name, "", "th"], [value, cls]]);
        tr.lastChild.colSpan = 2;
        return tr;
      }),
      row([["", "", "th"], ["turn", "col-head"], ["all", "col-head"]]),
      ...counters.map(([name, field]) => {
        const bad = field === "gaps" ? (v) => (v > 0 ? "bad" : "") : field === "delivered" || field === "connections" ? () => "" : hot;
        return row([[name, "", "th"], [s[field], bad(s[field])], [all[field], `total ${bad(all[field])}`]]);
      }),
    );
    const relayStatus = $("relay-status");
    relayStatus.textContent = `turn ${record?.n ?? "–"}: ${statsLine(s)} · ${snap.state}`;
  }
  if (record?.naiveClient) {
    const d = record.naiveClient.describe();
    const status = $("naive-status");
    status.textContent = d.text;
    status.className = `panel-status ${d.bad ? "bad" : ""}`;
  }
  refreshSend();
}

async function pollServer() {
  const key = state.key;
  if (!key || document.hidden) return;
  try {
    const s = await api("GET", `/streams/${key}/stats`);
    if (key !== state.key) return;
    state.server = s;
    dl($("server-stats"), [
      ["stream", s.key],
      ["journal", `${s.length} entr${s.length === 1 ? "y" : "ies"}${s.done ? ", done" : ""}`],
      ["tail", s.tail ?? "∅"],
      ["epoch", shortEpoch(s.epoch)],
      ["connections open", s.connections],
      ["connections total", s.connectionsTotal],
    ]);
    const armed = [];
    if (s.armed?.dupSeam) armed.push(`seam duplicate ×${s.armed.dupSeam.value} (${s.armed.dupSeam.connections} connection${s.armed.dupSeam.connections === 1 ? "" : "s"} left)`);
    if (s.armed?.joinDelayMs) armed.push(`slow join ${s.armed.joinDelayMs.value} ms (${s.armed.joinDelayMs.connections} left)`);
    const line = $("armed");
    line.className = `armed ${armed.length ? "on" : ""}`;
    line.textContent = armed.length ? `armed for the next connections: ${armed.join(" · ")}. Cut to use it.` : "armed for the next connections: nothing";
  } catch {
    // the server is gone: the stream's own state says so
  }
}

$("compose").addEventListener("submit", send);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("compose").requestSubmit();
  }
});
for (const button of document.querySelectorAll("[data-fault]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await fault(button.dataset.fault);
    } finally {
      button.disabled = false;
    }
  });
}
setInterval(refresh, 200);
setInterval(pollServer, 700);
main().catch((err) => log(`cockpit stopped: ${err.message}`, "bad"));
