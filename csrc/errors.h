/*
** errors.h: the one error catalogue of zcrm, as an X-macro list.
**
**   X(code, status, kind, retryable, message, resolution)
**
** status 0: no HTTP status (a failure before or without a response).
** Sources, Zoho CRM API v8 pages by title: "Update Custom Module" (its
** Possible Errors table; messages and resolutions are quoted from it, links
** dropped), "Status Codes", "Step 4: Refreshing your Access Tokens", and the
** Kaizen post "Common Errors and Error Handling".
** Expanded by error.c into a static table (and `core.catalogue`).
*/
#ifndef ZCRM_ERRORS_H
#define ZCRM_ERRORS_H

#define ZC_ERRORS(X) \
  /* ---- the nine errors of the "Update Custom Module" page ---- */ \
  X("INVALID_MODULE", 400, "api", 0, \
    "The URL contains invalid module data", \
    "Specify the correct API name or module ID in the URL. Refer to the GET " \
    "Modules API to retrieve the module details.") \
  X("NOT_ALLOWED", 400, "api", 0, \
    "API name cannot be updated for module", \
    "The module API name can be updated only through the UI.") \
  X("MINIMUM_DATA_NOT_FOUND", 400, "api", 0, \
    "Minimum one profile is needed", \
    "The profile key should not be empty or null. Assign atleast one " \
    "profile to update a module.") \
  X("INVALID_REQUEST_METHOD", 400, "api", 0, \
    "The http request method type is not a valid one", \
    "You have specified an invalid HTTP method to access the API URL. " \
    "Specify a valid request method. Refer to the Endpoints section.") \
  X("MANDATORY_NOT_FOUND", 400, "api", 0, \
    "Mandatory fields are missing", \
    "Specify all the mandatory fields to create a custom module. Refer to " \
    "the Input JSON section for more details.") \
  X("OAUTH_SCOPE_MISMATCH", 401, "auth", 0, \
    "Unauthorized", \
    "The client does not have a valid scope to update a custom module. " \
    "Create a new token with the required scopes. Refer to the Scope " \
    "section.") \
  X("AUTHENTICATION_FAILURE", 401, "auth", 0, \
    "Authentication failed", \
    "Pass the access token in the request header of the API call.") \
  X("INVALID_URL_PATTERN", 404, "api", 0, \
    "Please check if the URL trying to access is a correct one", \
    "The request URL specified is incorrect. Specify a valid request URL. " \
    "Refer to the Request URL section at the beginning of this page for " \
    "more details.") \
  X("INTERNAL_ERROR", 500, "api", 1, \
    "Internal Server Error", \
    "Unexpected and unhandled exception in the server. Contact support " \
    "team.") \
  /* ---- auth codes seen on the wire ("Status Codes"; Kaizen errors post) ---- */ \
  X("INVALID_TOKEN", 401, "auth", 0, \
    "invalid oauth token", \
    "The access token expired or was revoked. With oauth settings zcrm " \
    "refreshes it and retries once by itself; with a static access_token, " \
    "get a new token.") \
  X("INVALID_OAUTHTOKEN", 401, "auth", 0, /* docs' name for INVALID_TOKEN */ \
    "invalid oauth token", \
    "The access token expired or was revoked. With oauth settings zcrm " \
    "refreshes it and retries once by itself; with a static access_token, " \
    "get a new token.") \
  X("AUTHENTICATION_FAILED", 401, "auth", 0, /* Kaizen #25's spelling */ \
    "Authentication failed", \
    "Pass the access token in the request header of the API call.") \
  /* ---- other Zoho codes ("Update Custom Module"; Kaizen errors post) ---- */ \
  X("INVALID_DATA", 400, "api", 0, \
    "Invalid data", \
    "Correct the value named in details (api_name, json_path) and send " \
    "the request again.") \
  X("DUPLICATE_DATA", 400, "api", 0, \
    "Duplicate data", \
    "Another module already uses this singular or plural label; choose " \
    "another label.") \
  X("NO_PERMISSION", 403, "api", 0, \
    "permission denied", \
    "The user's profile lacks the CRM permission named in " \
    "details.permissions; ask an administrator to grant it.") \
  X("TOO_MANY_REQUESTS", 429, "limit", 1, \
    "Too many requests", \
    "The org's API credits or concurrency limit are used up; wait, then " \
    "retry with fewer calls in flight.") \
  X("NOT_SUPPORTED", 400, "api", 0, \
    "The module or operation is not supported through the API", \
    "Check that the module is API-supported (api_supported in GET " \
    "Modules).") \
  X("API_NOT_SUPPORTED", 400, "api", 0, \
    "The API version is not supported for this operation", \
    "Use the API version in details.supported_version or a newer one.") \
  X("INVALID_REQUEST", 400, "api", 0, \
    "Invalid request", \
    "Check the request URL and body against the API documentation.") \
  X("DEPENDENT_FIELD_MISSING", 400, "api", 0, \
    "autonumber data is not found", \
    "A display_field of data_type \"autonumber\" needs auto_number with " \
    "its start_number (\"Create Custom Module\").") \
  X("LIMIT_EXCEEDED", 400, "api", 0, \
    "Limit exceeded", \
    "The edition's limit (details.limit) is reached; remove something or " \
    "upgrade the edition.") \
  /* ---- transport failures: ours, no HTTP status (csrc/API.md) ---- */ \
  X("TIMEOUT", 0, "transport", 1, \
    "the request timed out", \
    "Retry later, or raise the timeout.") \
  X("CONNECTION_FAILED", 0, "transport", 1, \
    "could not connect to the server", \
    "Check the network, the API domain and any proxy, then retry.") \
  X("DNS_ERROR", 0, "transport", 1, \
    "could not resolve the host name", \
    "Check the API domain (data centre) and the DNS setup, then retry.") \
  X("TLS_ERROR", 0, "transport", 0, \
    "TLS handshake or certificate verification failed", \
    "Check the system CA bundle or the ca_file option; never turn " \
    "verification off.") \
  X("SEND_ERROR", 0, "transport", 1, \
    "failed sending the request", \
    "Retry; the connection broke while sending.") \
  X("RECV_ERROR", 0, "transport", 1, \
    "failed receiving the response", \
    "Retry; the connection broke before the response was complete.") \
  X("RESPONSE_TOO_LARGE", 0, "transport", 0, \
    "the response is larger than max_response_bytes", \
    "Raise max_response_bytes if the response is expected to be this " \
    "large.") \
  X("CANCELLED", 0, "transport", 0, \
    "the request was cancelled", \
    NULL) \
  X("TRANSPORT_ERROR", 0, "transport", 1, \
    "transfer failed", \
    "Retry; if it persists, run with verbose = true to see the exchange.") \
  X("OUTCOME_UNKNOWN", 0, "transport", 0, \
    "the request may have been applied: it may have reached the server, " \
    "and no answer came", \
    "Read the current state (e.g. GET the modules) to see whether it took " \
    "effect before sending it again; zcrm never resends a POST that may " \
    "have reached the server.") \
  X("UNEXPECTED_RESPONSE", 0, "transport", 0, \
    "the response body is empty, not JSON, or not in the documented shape", \
    "Check that the API domain points at Zoho CRM (or the emulator).") \
  /* ---- configuration and local limits: ours ---- */ \
  X("INVALID_URL", 0, "config", 0, \
    "invalid URL", \
    "Use https://host[:port] (plain http:// only for 127.0.0.0/8, ::1 or " \
    "localhost), without path, user info, query or fragment.") \
  X("INVALID_TOKEN_FORMAT", 0, "config", 0, \
    "invalid token format", \
    "Pass the token exactly as Zoho issued it: printable ASCII, no " \
    "spaces or line breaks.") \
  X("INVALID_HEADER", 0, "config", 0, \
    "invalid request header", \
    "Header lines are \"Name: value\" with no CR, LF or NUL.") \
  X("CREDIT_LIMIT", 0, "limit", 0, \
    "the call would exceed max_credits", \
    "Raise max_credits or wait until spent credits come back (rolling " \
    "24 hours).") \
  X("INVALID_CONFIG", 0, "config", 0, \
    "invalid option", \
    "Check the option named in field against the README's zcrm.new " \
    "options.") \
  X("UNSAFE_TOKEN_CACHE", 0, "config", 0, \
    "the token cache is readable by group or others", \
    "chmod 600 the token cache file.") \
  X("UNSAFE_CONFIG", 0, "config", 0, \
    "a config file holding a secret is readable by group or others", \
    "chmod 600 the config file.") \
  X("REFRESH_LIMIT", 0, "auth", 1, \
    "too many token refreshes for this refresh token", \
    "Zoho allows 10 refreshes per 10 minutes per refresh token; wait " \
    "details.retry_after seconds.") \
  /* ---- plans and the client itself: ours ---- */ \
  X("INVALID_PLAN", 0, "validation", 0, \
    "the plan has invalid entries", \
    "Fix every entry listed in details.errors; nothing was sent.") \
  X("JOURNAL_ERROR", 0, "io", 0, \
    "the journal could not be read or written", \
    "Check the journal path, its permissions and free disk space.") \
  X("UNDO_FILE_ERROR", 0, "io", 0, \
    "the undo plan could not be written", \
    "Check the undo file path, its permissions and free disk space.") \
  X("JOURNAL_BUSY", 0, "io", 0, \
    "the journal is in use by another run", \
    "Wait for the other run to finish, or give this run its own journal.") \
  X("CHANGED_SINCE_PLAN", 0, "validation", 0, \
    "the module changed since the plan was made; it was not updated", \
    "Make the plan again (zcrm plan), review it, and apply the new change " \
    "set.") \
  X("ORG_MISMATCH", 0, "validation", 0, \
    "the change set was made for another org", \
    "Apply a change set to the org it was planned against, or plan " \
    "again against this org.") \
  X("INVALID_CHANGES", 0, "validation", 0, \
    "the change set file is malformed", \
    "Write it again with zcrm plan --out; change sets are not edited by " \
    "hand.") \
  X("CHANGES_FILE_ERROR", 0, "io", 0, \
    "the change set file could not be read or written", \
    "Check the path and its permissions.") \
  X("INVALID_ORGS", 0, "validation", 0, \
    "the list of orgs is malformed", \
    "Give a list of { name =, options = <zcrm.new options> } with " \
    "distinct names.") \
  X("FILE_ERROR", 0, "io", 0, \
    "a file could not be opened or written", \
    "Check the path named in details.path: its directory, permissions and " \
    "free space, and that it is not a symbolic link.") \
  X("INVALID_ARGUMENT", 0, "validation", 0, \
    "an argument is not acceptable (a path or URL with a NUL byte)", \
    "Give the value named in field without a NUL byte; nothing was " \
    "opened or sent.") \
  X("CALLBACK_ERROR", 0, "callback", 0, \
    "a user callback raised an error", \
    "Fix the callback; the run itself went on.") \
  X("INTERNAL_CLIENT_ERROR", 0, "internal", 0, \
    "zcrm internal error", \
    "Please report it with the message; the call was not completed.") \
  /* ---- OAuth token endpoint errors (HTTP 200 + "error"; "Step 4: Refreshing
     your Access Tokens") ---- */ \
  X("invalid_client", 0, "auth", 0, \
    "invalid client id or secret, or the wrong data centre's accounts " \
    "server", \
    "Check client_id, client_secret and the accounts server of the org's " \
    "data centre.") \
  X("invalid_code", 0, "auth", 0, \
    "the grant code or refresh token is invalid, expired or revoked", \
    "Generate a new grant token and exchange it for a new refresh token.") \
  X("ACCESS_DENIED", 0, "auth", 1, \
    "too many token requests; try again after some time", \
    "Reuse access tokens until they expire; at most 10 refreshes per 10 " \
    "minutes per refresh token.") \
  X("access_denied", 0, "auth", 0, \
    "access was denied", \
    "Check the scopes granted to this client, and that the grant was not " \
    "refused.")

#endif
