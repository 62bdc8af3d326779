/*
** reply.c: answers in Zoho's two error shapes (Zoho's "Status Codes" and
** "Common Errors and Error Handling" pages): top-level
** {code,details,message,status} when the request as a whole fails, and
** one result per item inside {"modules":[...]} for what the body holds.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "emu.h"


/* {==================================================================
** Replies
** =================================================================== */

void reply_json (reply *r, int status, jbuf *b) {
  free(r->body);
  r->body = jb_take(b, &r->len);
  if (r->body == NULL) {          /* out of memory: say so, briefly */
    r->status = 500;
    r->len = 0;
  } else r->status = status;
  r->ctype = "application/json;charset=utf-8";
}

/* Shape A. details is a JSON object text. */
void reply_error (reply *r, int status, const char *code,
                  const char *details, const char *message) {
  jbuf b;
  jb_init(&b);
  jb_lit(&b, "{"); jb_key(&b, "code"); jb_str(&b, code);
  jb_lit(&b, ","); jb_key(&b, "details"); jb_lit(&b, details);
  jb_lit(&b, ","); jb_key(&b, "message"); jb_str(&b, message);
  jb_lit(&b, ","); jb_key(&b, "status"); jb_str(&b, "error");
  jb_lit(&b, "}");
  reply_json(r, status, &b);
}

/* Shape B, one error result: details are api_name and json_path, plus
** extra (",\"maximum_length\":25" and the like) when given. */
void reply_write_item_error (jbuf *b, const char *code, const char *api_name,
                             const char *json_path, const char *extra,
                             const char *message) {
  jb_lit(b, "{"); jb_key(b, "code"); jb_str(b, code);
  jb_lit(b, ",\"details\":{"); jb_key(b, "api_name"); jb_str(b, api_name);
  jb_lit(b, ","); jb_key(b, "json_path"); jb_str(b, json_path);
  if (extra) jb_lit(b, extra);
  jb_lit(b, "},"); jb_key(b, "message"); jb_str(b, message);
  jb_lit(b, ","); jb_key(b, "status"); jb_str(b, "error");
  jb_lit(b, "}");
}

/* Shape B, one success result. */
void reply_write_item_success (jbuf *b, const char *id, const char *message) {
  jb_lit(b, "{\"code\":\"SUCCESS\",\"details\":{\"id\":");
  jb_str(b, id);
  jb_lit(b, "},\"message\":"); jb_str(b, message);
  jb_lit(b, ",\"status\":\"success\"}");
}

/* {"modules":[ the results in items ]}; takes items' text. */
void reply_items (reply *r, int status, jbuf *items) {
  jbuf b;
  jb_init(&b);
  jb_lit(&b, "{\"modules\":[");
  if (items->p) jb_raw(&b, items->p, items->len);
  if (items->oom) b.oom = 1;
  jb_lit(&b, "]}");
  jb_free(items);
  reply_json(r, status, &b);
}

/* A body of one error result, HTTP 400. */
void reply_item_error (reply *r, const char *code, const char *api_name,
                       const char *json_path, const char *extra,
                       const char *message) {
  jbuf b;
  jb_init(&b);
  reply_write_item_error(&b, code, api_name, json_path, extra, message);
  reply_items(r, 400, &b);
}

void reply_invalid_module (reply *r) {
  reply_error(r, 400, "INVALID_MODULE", "{\"resource_path_index\":2}",
              "the module name given seems to be invalid");
}

void reply_bad_method (reply *r) {
  reply_error(r, 400, "INVALID_REQUEST_METHOD", "{}",
              "The http request method type is not a valid one");
}

void reply_bad_url (reply *r) {
  reply_error(r, 404, "INVALID_URL_PATTERN", "{}",
              "Please check if the URL trying to access is a correct one");
}

/* }================================================================== */


/* {==================================================================
** Content-Encoding: gzip, when the request accepts it
** =================================================================== */

#define GZIP_MIN 256              /* smaller answers go as they are */

/* 1 when an Accept-Encoding value lists gzip (or *) with a q above 0. */
int reply_accepts_gzip (const char *v) {
  const char *p = v;
  if (v == NULL) return 0;
  while (*p) {
    const char *end = p + strcspn(p, ","), *q;
    size_t n;
    while (*p == ' ' || *p == '\t') p++;
    n = strcspn(p, " \t;,");
    if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) || (n == 1 && *p == '*')) {
      q = strstr(p, "q=");
      if (q == NULL || q > end || strtod(q + 2, NULL) > 0) return 1;
    }
    p = *end ? end + 1 : end;
  }
  return 0;
}

/* Compress r's body with zlib into a gzip member. 1 when done; 0 leaves r
** as it was (small, already encoded, dripped, or out of memory). */
int reply_gzip (reply *r) {
  z_stream z;
  uLong cap;
  unsigned char *out;
  if (r->body == NULL || r->len < GZIP_MIN || r->gzip || r->drip
      || r->len > 0x7fffffffUL)
    return 0;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  cap = deflateBound(&z, (uLong)r->len);
  out = (unsigned char *)malloc(cap);
  if (out == NULL) { deflateEnd(&z); return 0; }
  z.next_in = (Bytef *)r->body;
  z.avail_in = (uInt)r->len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
    deflateEnd(&z);
    free(out);
    return 0;
  }
  free(r->body);
  r->body = (char *)out;
  r->len = (size_t)z.total_out;
  r->gzip = 1;
  deflateEnd(&z);
  return 1;
}

/* }================================================================== */
