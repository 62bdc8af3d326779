// The SDK side of figure 2: N module updates through Zoho's official Node.js
// SDK (@zohocrm/nodejs-sdk-8.0, installed into bench/node_modules by
// bench/run.sh), C calls in flight, against the emulator at URL.
//
// usage: node bench/sdk_updates.mjs URL N [C]
//
// How it reaches the emulator: the SDK builds every API URL as
// `environment.getUrl() + apiPath` (routes/middlewares/common_api_handler.js,
// setAPIUrl), and an Environment is any (url, accountsUrl, fileUploadUrl)
// triple (routes/dc/data_center.js, DataCenter.setEnvironment). So the
// environment is the emulator's own http://127.0.0.1:PORT; `got`, the SDK's
// HTTP client, speaks plain http to it. No TLS is needed.
//
// Authentication: the access-token flow (OAuthBuilder().accessToken(...)) with
// findUser(false) (otherwise the SDK first asks /users?type=CurrentUser). The
// SDK calls its token store on every request, and its default FileStore
// rereads and rewrites a CSV file each time; an in-memory TokenStore (the
// README's "custom persistence") keeps that cost out of the figure, so the
// SDK is measured at its most favourable.
//
// Concurrency: every SDK call is async; C workers each await one call at a
// time, so at most C are in flight (checked with the emulator's max_in_flight
// under latency). Exit 0 only if all N answered SUCCESS.
import * as Z from "@zohocrm/nodejs-sdk-8.0";
import { memoryStore } from "../spec/sdk/memory_store.mjs";

const [url, nArg, cArg] = process.argv.slice(2);
const N = Number(nArg), C = Number(cArg || 10);
if (!url || !(N >= 0)) {
  console.error("usage: node bench/sdk_updates.mjs URL N [C]");
  process.exit(2);
}

const environment = Z.DataCenter.setEnvironment(url, url + "/oauth/v2/token", url);
const token = new Z.OAuthBuilder().accessToken("emulator-token").findUser(false).build();
await (await new Z.InitializeBuilder())
  .environment(environment).token(token).store(memoryStore(Z)).initialize();

const ops = new Z.Modules.ModulesOperations();
let ok = 0, failed = 0, next = 1;

async function update(i) {
  const module = new Z.Modules.Modules();
  module.setPluralLabel("Bench Items " + i);
  module.setSingularLabel("Bench Item " + i);
  const body = new Z.Modules.BodyWrapper();
  body.setModules([module]);
  const res = await ops.updateModuleByAPIName("Bulk_Module_" + i, body);
  const obj = res.getObject();
  if (res.getStatusCode() === 200 && obj instanceof Z.Modules.ActionWrapper
      && obj.getModules()[0] instanceof Z.Modules.SuccessResponse) {
    ok++;
    return;
  }
  failed++;
  if (failed <= 3) console.error("sdk_updates: update", i, "got HTTP", res.getStatusCode());
}

async function worker() {
  while (next <= N) await update(next++);
}

await Promise.all(Array.from({ length: C }, worker));
if (failed > 0) console.error(`sdk_updates: ${failed} of ${N} updates failed`);
process.exit(failed === 0 && ok === N ? 0 : 1);
