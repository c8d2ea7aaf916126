// Shared by the end-to-end harness pages: the page's configuration, the run record the tests read
// (`window.e2e`), the rendered transcript, and the dispatch of a job.

/** The page's configuration: JSON in the `config` query parameter (so a reload keeps it). */
export function readConfig() {
  const raw = new URLSearchParams(location.search).get("config");
  return raw ? JSON.parse(raw) : null;
}

/** Milliseconds since the page started (`performance.now()`), rounded to 0.1 ms. */
export const now = () => Math.round(performance.now() * 10) / 10;

const STORE = "e2e-transcript";

/**
 * The run record the tests read through `window.e2e`. `frames` is the transcript: every frame the
 * client rendered, in order. `previous` is the transcript an earlier page of this tab rendered
 * before a reload (kept in sessionStorage when the config says `keepTranscript`).
 */
export function createRun(kind, config) {
  const previous = sessionStorage.getItem(`${STORE}:${kind}`);
  sessionStorage.removeItem(`${STORE}:${kind}`);
  const run = {
    kind,
    config,
    previous: previous ? JSON.parse(previous) : null,
    frames: [],
    events: [],
    dispatched: false,
    dispatchStatus: null,
    done: false,
    finished: false,
    error: null,
  };
  window.e2e = run;
  return run;
}

const list = () => document.getElementById("transcript");

/** Renders one frame: the run's transcript, the page's list, and the reload store if asked. */
export function render(run, frame) {
  run.frames.push(frame);
  const item = document.createElement("li");
  item.textContent = `${frame.id || "(no id)"} ${frame.event} ${frame.data.slice(0, 80)}`;
  list().append(item);
  if (run.config?.keepTranscript) {
    sessionStorage.setItem(`${STORE}:${run.kind}`, JSON.stringify(run.frames));
  }
}

/** POSTs the job (a turn of the reference server). */
export async function dispatch(run, url) {
  run.dispatched = true;
  run.dispatchedAt = now();
  const response = await fetch(url, { method: "POST" });
  run.dispatchStatus = response.status;
}

/** A plain, structured-clonable copy of an error or an event argument (long data cut). */
export function plain(value) {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, option: value.option };
  }
  if (value === null || typeof value !== "object") return value;
  const copy = {};
  for (const key of Object.keys(value)) {
    const v = value[key];
    copy[key] = typeof v === "string" && v.length > 200 ? `${v.slice(0, 200)}… (${v.length} chars)` : plain(v);
  }
  return copy;
}
