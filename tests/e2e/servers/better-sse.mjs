// A plain `Last-Event-ID` SSE server built on better-sse (npm), as a team would write one: no
// `ready` frame, no epochs, numeric ids, the cursor read by better-sse itself (`session.lastId`:
// the `Last-Event-ID` header, else the `lastEventId` query parameter). It also serves the pages
// (www/, with the package under /pkg) so they are same-origin. Started and stopped by the tests,
// on a loopback port it picks.
//
//   GET  /streams/{key}/events   the stream; query knobs:
//        replay=0        a server without a journal: it ignores the cursor (live only)
//        overlap=N       replays N frames before the cursor too (a sloppy seam)
//        cutAfter=N      ends each response after N frames it sent
//        cuts=K          ...for the key's first K responses only (default: all)
//   POST /streams/{key}/turn?tokens=N&intervalMs=M   appends N `token` frames, then `done`
//   GET  /streams/{key}/journal   every frame appended, as JSON (the truth)
//   GET  /streams/{key}/stats     { connectionsTotal, connectionsOpen }
import { createServer } from "node:http";
import { createSession } from "better-sse";
import { serveStatic } from "./static.mjs";

class Stream {
  constructor() {
    this.frames = [];
    this.sessions = new Set();
    this.connectionsTotal = 0;
    this.cuts = 0;
  }

  append(event, data) {
    const frame = { id: String(this.frames.length + 1), event, data };
    this.frames.push(frame);
    for (const live of this.sessions) live.send(frame);
    return frame;
  }
}

/** Starts the server; `root` is the repository (www/ is served). */
export async function startPlainServer({ root, keepAliveMs = 300 }) {
  const streams = new Map();
  const stream = (key) => {
    if (!streams.has(key)) streams.set(key, new Stream());
    return streams.get(key);
  };
  const timers = new Set();

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const match = url.pathname.match(/^\/streams\/([^/]+)\/(events|turn|journal|stats)$/);
    if (!match) return serveStatic(root, url.pathname, res);
    const [, key, what] = match;
    const s = stream(decodeURIComponent(key));
    if (what === "journal") return json(res, s.frames);
    if (what === "stats") return json(res, { connectionsTotal: s.connectionsTotal, connectionsOpen: s.sessions.size });
    if (what === "turn" && req.method === "POST") {
      const tokens = Number(url.searchParams.get("tokens") ?? 100);
      const interval = Number(url.searchParams.get("intervalMs") ?? 5);
      let n = 0;
      const step = () => {
        timers.delete(timer);
        if (n < tokens) {
          s.append("token", JSON.stringify({ n: n++ }));
          timer = setTimeout(step, interval);
          timers.add(timer);
        } else {
          s.append("done", "{}");
        }
      };
      let timer = setTimeout(step, 0);
      timers.add(timer);
      res.writeHead(202).end();
      return;
    }
    if (what !== "events") return res.writeHead(405).end();

    const session = await createSession(req, res, { keepAlive: keepAliveMs, retry: 250 });
    s.connectionsTotal += 1;
    const replay = url.searchParams.get("replay") !== "0";
    const overlap = Number(url.searchParams.get("overlap") ?? 0);
    const cuts = Number(url.searchParams.get("cuts") ?? Infinity);
    const cutAfter = s.cuts < cuts ? Number(url.searchParams.get("cutAfter") ?? 0) : 0;
    let sent = 0;
    const live = {
      send(frame) {
        if (!session.isConnected) return;
        // better-sse JSON-serializes what it is given (its default): the journal keeps that text.
        session.push(JSON.parse(frame.data), frame.event, frame.id);
        sent += 1;
        const cut = cutAfter && sent >= cutAfter;
        if (cut) s.cuts += 1;
        if (cut || frame.event === "done") {
          s.sessions.delete(live);
          res.end();
        }
      },
    };
    session.on("disconnected", () => s.sessions.delete(live));
    // The join: replay after the cursor (the whole history without one), then live.
    if (replay) {
      const after = Number(session.lastId || 0);
      const from = Math.max(0, after - (session.lastId ? overlap : 0));
      for (const frame of s.frames.slice(from)) {
        live.send(frame);
        if (res.writableEnded) return;
      }
    }
    if (!res.writableEnded) s.sessions.add(live);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    async journal(key) {
      return (await fetch(`${url}/streams/${encodeURIComponent(key)}/journal`)).json();
    },
    async stats(key) {
      return (await fetch(`${url}/streams/${encodeURIComponent(key)}/stats`)).json();
    },
    eventsUrl(key, knobs = {}) {
      const query = new URLSearchParams(knobs).toString();
      return `${url}/streams/${encodeURIComponent(key)}/events${query ? `?${query}` : ""}`;
    },
    turnUrl(key, { tokens = 100, intervalMs = 5 } = {}) {
      return `${url}/streams/${encodeURIComponent(key)}/turn?tokens=${tokens}&intervalMs=${intervalMs}`;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function json(res, value) {
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(value));
}
