// Microsoft's own validators, fed JSON lines on stdin, one answer line each on stdout.
//
//   {"id": 1, "kind": "card", "payload": {...an Adaptive Card...}}
//   {"id": 2, "kind": "teams-manifest", "payload": {...manifest.json...}}
//   -> {"id": 1, "problems": ["..."]}
//
// A card is parsed by the `adaptivecards` library (every parse event is a problem),
// validated (every validation event is a problem) and rendered into a jsdom document
// (an exception is a problem). A Teams manifest is checked by `@microsoft/app-manifest`
// against the JSON schema it bundles for the manifest's own `manifestVersion`.
"use strict";

// stdout carries the answers alone: the libraries' own console output goes to stderr.
for (const level of ["log", "info", "warn", "debug"]) console[level] = console.error;

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { JSDOM } = require("jsdom");

// adaptivecards reads the browser's globals (`document`, `HTMLElement`, its subclasses…)
// from the global scope: give it jsdom's window's, leaving Node's own where it has one.
const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", { pretendToBeVisual: true });
for (const name of Object.getOwnPropertyNames(dom.window)) {
  if (!(name in globalThis)) {
    try {
      globalThis[name] = dom.window[name];
    } catch {
      // a getter jsdom does not let us read out of its window: not one adaptivecards uses
    }
  }
}
globalThis.window = dom.window;

// The package's `main` is ES modules with extensionless imports, which Node cannot load;
// its `dist` build is the same library as one UMD file.
const AC = require("adaptivecards/dist/adaptivecards.js");
const { ManifestUtil } = require("@microsoft/app-manifest");

const EVENT = AC.ValidationEvent;

function describe(event) {
  const kind = EVENT[event.event] || String(event.event);
  const source = event.source && event.source.getJsonTypeName ? event.source.getJsonTypeName() : "";
  return `${kind}${source ? ` (${source})` : ""}: ${event.message}`;
}

function checkCard(payload) {
  const problems = [];
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  card.parse(payload, context);
  for (let i = 0; i < context.eventCount; i++) {
    problems.push(`parse ${describe(context.getEventAt(i))}`);
  }
  for (const event of card.validateProperties().validationEvents) {
    problems.push(`validation ${describe(event)}`);
  }
  try {
    const rendered = card.render();
    if (!rendered) problems.push("render: nothing rendered");
  } catch (error) {
    problems.push(`render: ${error && error.message ? error.message : error}`);
  }
  return problems;
}

const SCHEMAS = path.join(
  path.dirname(require.resolve("@microsoft/app-manifest/package.json")),
  "build",
  "json-schemas",
  "teams",
);

async function checkTeamsManifest(payload) {
  const version = payload && payload.manifestVersion;
  const file = path.join(SCHEMAS, `v${version}`, "MicrosoftTeams.schema.json");
  if (typeof version !== "string" || !fs.existsSync(file)) {
    return [`no bundled schema for manifestVersion ${JSON.stringify(version)}`];
  }
  const schema = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!String(schema.$schema || "").includes("draft-04")) {
    return [`the v${version} schema is not draft-04: ${schema.$schema}`];
  }
  return ManifestUtil.validateManifestAgainstSchema(payload, schema);
}

async function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { id: null, problems: [`not JSON: ${error.message}`] };
  }
  try {
    if (request.kind === "card") return { id: request.id, problems: checkCard(request.payload) };
    if (request.kind === "teams-manifest") {
      return { id: request.id, problems: await checkTeamsManifest(request.payload) };
    }
    return { id: request.id, problems: [`unknown kind ${JSON.stringify(request.kind)}`] };
  } catch (error) {
    return { id: request.id, problems: [`validator raised: ${error && error.stack ? error.stack : error}`] };
  }
}

async function main() {
  const versions = {
    adaptivecards: require("adaptivecards/package.json").version,
    jsdom: require("jsdom/package.json").version,
    "@microsoft/app-manifest": require("@microsoft/app-manifest/package.json").version,
    node: process.versions.node,
  };
  process.stdout.write(JSON.stringify({ ready: versions }) + "\n");
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    process.stdout.write(JSON.stringify(await answer(line)) + "\n");
  }
}

main();
