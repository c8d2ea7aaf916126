// A React component that streams while mounted, under StrictMode (which mounts, unmounts and
// mounts it again at once in development): it opens on mount and closes on unmount, so no
// connection, listener or stream outlives it. Built with esbuild by tests/e2e/10-packaging.
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { RelayStream, ready } from "sse-relay";
import wasm from "sse-relay/sse_relay_bg.wasm"; // esbuild's recipe (see the package README)

await ready({ wasm });

const key = new URLSearchParams(location.search).get("key") ?? "react-demo";
window.react = { opened: 0, closed: 0, rendered: [], errors: [] };

function Transcript() {
  const [frames, setFrames] = useState([]);
  useEffect(() => {
    const controller = new AbortController();
    let stream;
    (async () => {
      try {
        stream = await RelayStream.open(`/streams/${key}/events`, { key, events: ["token"], signal: controller.signal });
        window.react.opened += 1;
        for await (const frame of stream) {
          setFrames((all) => [...all, frame]);
          window.react.rendered.push(frame.id);
        }
      } catch (err) {
        if (err.name !== "AbortError") window.react.errors.push(`${err.name}: ${err.message}`);
      }
    })();
    return () => {
      controller.abort(); // closes the stream, or rejects an open still pending
      if (stream) window.react.closed += 1;
      window.react.lastState = () => stream?.state ?? "never opened";
    };
  }, []);
  return <ul>{frames.map((f) => <li key={f.id}>{f.id} {f.event} {f.data}</li>)}</ul>;
}

const root = createRoot(document.getElementById("root"));
root.render(<StrictMode><Transcript /></StrictMode>);
window.unmount = () => root.unmount();
