// The harness pages (www/, with the package under /pkg), served by the test servers that are not
// the reference server, so the pages can be same-origin with them or stand apart from them.
import { createServer } from "node:http";
import { createReadStream, existsSync, realpathSync, statSync } from "node:fs";
import { extname, join, normalize } from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".json": "application/json" };

/** Answers `pathname` from `root`/www, or 404. */
export function serveStatic(root, pathname, res) {
  const www = join(root, "www");
  const path = normalize(join(www, decodeURIComponent(pathname)));
  if (!path.startsWith(www) || !existsSync(path) || !statSync(path).isFile()) {
    res.writeHead(404).end();
    return;
  }
  const type = TYPES[extname(path)] ?? "application/octet-stream";
  res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
  createReadStream(realpathSync(path)).pipe(res);
}

/** A server of the pages alone, on a loopback port it picks. */
export async function startStaticServer({ root }) {
  const server = createServer((req, res) => serveStatic(root, new URL(req.url, "http://127.0.0.1").pathname, res));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
