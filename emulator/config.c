/*
** config.c: the emulator's default settings, in one place for the command
** line (main.c) and the fuzz target (fuzz/fuzz_emulator.c).
*/
#include <string.h>

#include "emu.h"

void emu_config_defaults (emu_config *c) {
  memset(c, 0, sizeof *c);
  c->host = "127.0.0.1";
  c->port = 8089;
  c->concurrency = 20;
  c->credits = 1000000;
  c->credits_window = 86400;
  c->module_quota = -1;
  c->create_credits = 500;
  c->access_token = "emulator-token";
  c->scopes = "ZohoCRM.settings.ALL";
  c->client_id = "emulator-client-id";
  c->client_secret = "emulator-client-secret";
  c->refresh_token = "emulator-refresh-token";
  c->token_ttl = 3600;
  c->grant_ttl = 600;
  c->refresh_rate_limit = 10;
  c->faults = "500,503,reset,slow,429,garbage";
  c->seed = 1;
  c->max_body = 1048576;
  c->idle_timeout = 30;
  c->max_connections = 1000;
  c->header_timeout = 10;
}
