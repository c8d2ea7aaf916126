// The demo: one turn streamed to sse-relay and to a naive EventSource client, under the same faults.
import { RelayStream } from "./pkg/index.js";

const form = document.querySelector("#turn");

function show(section, fields) {
  section.querySelector(".status").replaceChildren(
    ...Object.entries(fields).flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = String(v);
      return [dt, dd];
    }),
  );
}

function verdict(section, rendered, journal) {
  const tokens = journal.filter((f) => f.event === "token").length;
  const exact = rendered.length === tokens && rendered.every((i, n) => i === n);
  const el = section.querySelector(".verdict");
  el.className = `verdict ${exact ? "ok" : "bad"}`;
  el.textContent = exact ? `✓ ${tokens}/${tokens} tokens, in order`
    : `✗ ${rendered.length} rendered for ${tokens} (${tokens - new Set(rendered).size} missing, ${rendered.length - new Set(rendered).size} repeated)`;
}

async function runRelay(section, key, knobs, dispatch) {
  const transcript = section.querySelector(".transcript");
  const rendered = [];
  const stream = await RelayStream.open(`/streams/${key}/events?${knobs}`, { events: ["token"], from: "now", contiguousIds: true });
  const refresh = () => show(section, { state: stream.state, cursor: stream.cursor?.id ?? "–", epoch: stream.epoch ?? "–", ...stream.stats });
  stream.on("state", refresh);
  refresh();
  await dispatch(); // safe: the server has joined
  for await (const frame of stream) {
    if (frame.event === "token") {
      const { i, text } = JSON.parse(frame.data);
      rendered.push(i);
      transcript.textContent += text;
    }
    refresh();
  }
  return rendered;
}

function runNaive(section, key, knobs, dispatch) {
  const transcript = section.querySelector(".transcript");
  const rendered = [];
  let reconnects = 0, garbage = 0;
  return new Promise((resolve) => {
    const connect = (first) => {
      const source = new EventSource(`/streams/${key}/events?from=now&${knobs}`);
      source.onopen = () => { if (first) dispatch(); };          // "open means ready": the bug
      source.addEventListener("token", (e) => {
        try { const { i, text } = JSON.parse(e.data); rendered.push(i); transcript.textContent += text; }
        catch { garbage += 1; transcript.textContent += "�"; }
        show(section, { rendered: rendered.length, reconnects, garbage });
      });
      source.addEventListener("done", () => { source.close(); resolve(rendered); });
      source.onerror = () => {                                    // a new EventSource, no cursor
        source.close();
        show(section, { rendered: rendered.length, reconnects: reconnects + 1, garbage });
        if (reconnects++ < 50) setTimeout(() => connect(false), 300); else resolve(rendered);
      };
    };
    show(section, { rendered: 0, reconnects: 0, garbage: 0 });
    connect(true);
    setTimeout(() => resolve(rendered), 30_000);
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const knobs = new URLSearchParams();
  for (const name of ["joinDelayMs", "dropAfter", "dupSeam", "garbage"]) if (data.get(name)) knobs.set(name, data.get(name));
  const tokens = Number(data.get("tokens")), rate = Number(data.get("rate"));
  const button = form.querySelector("button");
  button.disabled = true;
  const sections = [document.querySelector("#relay"), document.querySelector("#naive")];
  for (const s of sections) { s.querySelector(".transcript").textContent = ""; s.querySelector(".verdict").textContent = ""; }
  const keys = [`demo-${crypto.randomUUID()}`, `demo-${crypto.randomUUID()}`];
  const dispatch = (key) => () => fetch(`/streams/${key}/turns?tokens=${tokens}&rateHz=${rate}`, { method: "POST" });
  try {
    const [relay, naive] = await Promise.all([
      runRelay(sections[0], keys[0], knobs, dispatch(keys[0])),
      runNaive(sections[1], keys[1], knobs, dispatch(keys[1])),
    ]);
    const journal = async (key) => {
      const stats = await (await fetch(`/streams/${key}/stats`)).json();
      return Array.from({ length: stats.length - 1 }, () => ({ event: "token" }));
    };
    verdict(sections[0], relay, await journal(keys[0]));
    verdict(sections[1], naive, await journal(keys[1]));
  } catch (e) {
    sections[0].querySelector(".verdict").textContent = `${e.name}: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});
