// Builds the hosted pages (ui/) into ui/dist, which is never committed: one
// esbuild bundle for the browser (the client package's browser entry and
// Connect-Web inside, no CDN), the page and its stylesheet. `npm start` and
// `npm test` run it first; it takes well under a second.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../ui/", import.meta.url));
const dist = `${root}dist`;
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [`${root}src/main.ts`],
  outfile: `${dist}/app.js`,
  bundle: true,
  platform: "browser",
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "error",
});
copyFileSync(`${root}index.html`, `${dist}/index.html`);
copyFileSync(`${root}app.css`, `${dist}/app.css`);
