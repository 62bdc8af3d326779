// An in-memory token store for Zoho's Node.js SDK (its README's "custom
// persistence"), shared by spec/sdk/sdk_oauth.mjs and bench/sdk_updates.mjs.
// It takes the SDK's module from its caller, so each resolves the SDK from
// its own node_modules. The SDK's default FileStore rereads and rewrites a
// CSV file on every request.
export function memoryStore(Z) {
  class MemoryStore extends Z.TokenStore.TokenStore {
    constructor() { super(); this.token = null; }
    async findToken() { return this.token; }
    async findTokenById() { return this.token; }
    async saveToken(token) { if (token.getId() == null) token.setId("1"); this.token = token; }
    async deleteToken() { this.token = null; }
    async getTokens() { return this.token ? [this.token] : []; }
    async deleteTokens() { this.token = null; }
  }
  return new MemoryStore();
}
