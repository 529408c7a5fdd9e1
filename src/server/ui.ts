// The hosted pages (docs/hosted-pages.md): a small web app under /ui/ on the
// service's own port, bundled from ui/ by scripts/build-ui.ts into ui/dist
// (never committed; `npm start` and `npm test` build it first). Every page is the
// same index.html (the app routes on the path); the bundle and the stylesheet are
// the only other files. Pages hold tokens in their URL (the mailed links) and in
// sessionStorage, so: a CSP without inline script, no framing, no referrer.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const UI_PREFIX = "/ui/";
export const UI_DIST = resolve(fileURLToPath(new URL("../../ui/dist", import.meta.url)));

export const UI_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

const ASSETS: Record<string, string> = {
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

export interface UiResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** The answer to GET `path` (under /ui/), read from `dist`. */
export async function serveUi(path: string, dist = UI_DIST): Promise<UiResponse> {
  const name = path.slice(UI_PREFIX.length);
  const asset = ASSETS[name];
  const file = asset ? name : "index.html";
  try {
    const body = await readFile(join(dist, file));
    return {
      status: 200,
      headers: { ...UI_HEADERS, "content-type": asset ?? "text/html; charset=utf-8", "cache-control": asset ? "public, max-age=300" : "no-store" },
      body,
    };
  } catch {
    return { status: 404, headers: { ...UI_HEADERS, "content-type": "text/plain; charset=utf-8" }, body: "hosted pages not built (npm run build:ui)\n" };
  }
}
