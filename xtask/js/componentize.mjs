// Builds one JavaScript plugin into a component with the componentize-js
// API (its `jco componentize` front end cannot read a WIT folder).
//
//   node componentize.mjs TOOLS_DIR SOURCE WIT_DIR WORLD OUT
//
// TOOLS_DIR is where `npm ci` installed this folder's package-lock.json.
// `fetch` and the `fetch-event` handler are left out, so the component
// imports no `wasi:http` interface. Without them the engine still defines
// a `fetch` that traps when called, which no plugin can catch: the source
// is built behind a preamble whose `fetch` throws a TypeError instead.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const PREAMBLE = `globalThis.fetch = function fetch() {
  throw new TypeError("fetch: a Cloister plugin has no network");
};
`;

const [tools, pluginSource, witPath, worldName, out] = process.argv.slice(2);
const sourcePath = `${out}.source.js`;
await writeFile(sourcePath, PREAMBLE + (await readFile(pluginSource, "utf8")));
const api = join(tools, "node_modules/@bytecodealliance/componentize-js/src/componentize.js");
const { componentize } = await import(pathToFileURL(api).href);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
