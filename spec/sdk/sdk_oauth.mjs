// Zoho's official Node.js SDK (@zohocrm/nodejs-sdk-8.0, installed into
// spec/sdk/node_modules by `make sdk`) against the emulator at URL, logged in
// with OAuth as against Zoho: the SDK refreshes its own access token at the
// emulator's /oauth/v2/token (a multipart/form-data POST, as it sends to
// Zoho Accounts), then reads modules, relabels one, and batch-updates two.
//
// usage: node spec/sdk/sdk_oauth.mjs URL
//
// The environment is any (url, accountsUrl, fileUploadUrl) triple
// (routes/dc/data_center.js), so it is the emulator's own http://127.0.0.1:PORT.
// The SDK 2.0.0 has no batch operation (ModulesOperations has getModules,
// getModule[ByAPIName], updateModule[ByAPIName], createCustomModules), so the
// batch PUT /crm/v8/settings/modules goes through the SDK's own request
// machinery (CommonAPIHandler, exported by the package), as its operations do.
//
// Prints one JSON line with what each step saw; exit 0 only if every step
// succeeded.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as Z from "@zohocrm/nodejs-sdk-8.0";
import { memoryStore } from "./memory_store.mjs";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node spec/sdk/sdk_oauth.mjs URL");
  process.exit(2);
}

const out = {};
try {
  const environment = Z.DataCenter.setEnvironment(url, url + "/oauth/v2/token", url);
  const token = new Z.OAuthBuilder().clientId("emulator-client-id").clientSecret("emulator-client-secret")
    .refreshToken("emulator-refresh-token").findUser(false).build();
  const store = memoryStore(Z);
  await (await new Z.InitializeBuilder()).environment(environment).token(token).store(store).initialize();

  const ops = new Z.Modules.ModulesOperations();

  // read: every module
  const list = await ops.getModules();
  const wrapper = list.getObject();
  out.list_status = list.getStatusCode();
  out.modules = wrapper instanceof Z.Modules.ResponseWrapper ? wrapper.getModules().length : 0;
  out.access_token = Boolean(store.token && store.token.getAccessToken());

  // update: relabel Deals, a standard module
  const deals = new Z.Modules.Modules();
  deals.setPluralLabel("Opportunities");
  deals.setSingularLabel("Opportunity");
  const body = new Z.Modules.BodyWrapper();
  body.setModules([deals]);
  const upd = await ops.updateModuleByAPIName("Deals", body);
  const action = upd.getObject();
  out.update_status = upd.getStatusCode();
  out.update = action instanceof Z.Modules.ActionWrapper
    && action.getModules()[0] instanceof Z.Modules.SuccessResponse
    ? action.getModules()[0].getCode().getValue() : String(action && action.getCode && action.getCode().getValue());

  // batch: PUT /crm/v8/settings/modules with two modules, by the SDK's machinery
  const items = [["2423488000000834005", "Client Projects", "Client Project"],
                 ["2423488000000834023", "Support Tickets", "Support Ticket"]].map(([id, p, s]) => {
    const m = new Z.Modules.Modules();
    m.setId(BigInt(id));
    m.setPluralLabel(p);
    m.setSingularLabel(s);
    return m;
  });
  const batchBody = new Z.Modules.BodyWrapper();
  batchBody.setModules(items);
  const handler = new Z.CommonAPIHandler();
  handler.setAPIPath("/crm/v8/settings/modules");
  handler.setHttpMethod("PUT");
  handler.setCategoryMethod("UPDATE");
  handler.setContentType("application/json");
  handler.setRequest(batchBody);
  const sdkDir = path.dirname(fileURLToPath(import.meta.resolve("@zohocrm/nodejs-sdk-8.0")));
  const batch = await handler.apiCall(path.join(sdkDir, "core/com/zoho/crm/api/modules/action_handler.js"),
                                      "application/json");
  const bw = batch.getObject();
  out.batch_status = batch.getStatusCode();
  out.batch = bw instanceof Z.Modules.ActionWrapper
    ? bw.getModules().map((r) => r.getCode().getValue()) : [];
} catch (err) {
  out.error = String(err && (err.message || err.code || err));
  if (err && err.details) out.details = err.details;
}
console.log(JSON.stringify(out));
const ok = out.list_status === 200 && out.modules > 0 && out.update === "SUCCESS"
  && out.batch_status === 200 && out.batch.length === 2 && out.batch.every((c) => c === "SUCCESS");
process.exit(ok ? 0 : 1);
