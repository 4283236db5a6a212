// Copies the browser files of the pinned npm packages (package-lock.json) into the app's static folder,
// with their licences. Run by `make assets` after `npm ci`; the Docker image runs it in a node stage.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "src", "loanfund", "web", "static", "vendor");
const files = [
  ["htmx.org", "dist/htmx.min.js", "htmx.min.js"],
  ["echarts", "dist/echarts.min.js", "echarts.min.js"],
];
const licences = [
  ["htmx.org", "LICENSE"],
  ["echarts", "LICENSE"],
  ["echarts", "NOTICE"],
];

mkdirSync(join(out, "licenses"), { recursive: true });
const manifest = {};
for (const [pkg, from, to] of files) {
  copyFileSync(join(root, "node_modules", pkg, from), join(out, to));
  const meta = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8"));
  manifest[to] = { package: pkg, version: meta.version, license: meta.license };
}
for (const [pkg, file] of licences) {
  copyFileSync(join(root, "node_modules", pkg, file), join(out, "licenses", `${pkg}-${file}.txt`));
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendor assets: ${Object.entries(manifest).map(([f, m]) => `${f} (${m.package} ${m.version}, ${m.license})`).join(", ")}`);
