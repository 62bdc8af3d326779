/*
** fields.h: the one table of the fields of an update ("Update Custom
** Module", its Input JSON keys) and of its success answer, as X-macro
** lists:
**
**   X(name, kind)
**
** validate.c checks an update against ZC_UPDATE_FIELDS and
** ZC_PROFILE_FIELDS (the keys it allows, in the order it checks them, and
** the lists its messages name); body.c writes the JSON body from the same
** lists, in their order; answer.c reads the one item of the success answer
** through ZC_ANSWER_FIELDS. So a new field of a kind below is one line
** here; a new kind is a rule in the units that meet it.
** Data only: no unit calls another through this header.
*/
#ifndef ZCRM_FIELDS_H
#define ZCRM_FIELDS_H

/* The kinds: how validate.c checks a field and how body.c and answer.c
** write and read it. */
enum {
  /* the update */
  ZC_F_LABEL,       /* a module label (validate.c's zc_check_label): a JSON
                    ** string */
  ZC_F_PROFILES,    /* the list of profile entries (ZC_PROFILE_FIELDS): a
                    ** JSON array of objects */
  /* one profile entry: one of id or name, and _delete (zc_check_profile) */
  ZC_F_ID,          /* an id: digits as a JSON string, or an integer */
  ZC_F_NAME,        /* a profile name, resolved to an id before sending */
  ZC_F_DELETE,      /* null (or true) revokes; false or absent grants */
  /* the success answer's item: every string the server chose is checked
  ** for the client's secrets */
  ZC_F_CODE,        /* a non-empty string */
  ZC_F_TEXT,        /* an optional string */
  ZC_F_SUCCESS,     /* the string "success" (else not the success shape) */
  ZC_F_STRINGS      /* an object of strings ({} when absent) */
};

#define ZC_UPDATE_FIELDS(X) \
  X(plural_label, ZC_F_LABEL) \
  X(singular_label, ZC_F_LABEL) \
  X(profiles, ZC_F_PROFILES)

#define ZC_PROFILE_FIELDS(X) \
  X(id, ZC_F_ID) \
  X(name, ZC_F_NAME) \
  X(_delete, ZC_F_DELETE)

/* {"modules":[{ these }]}; the result adds `id`, read from details.id. */
#define ZC_ANSWER_FIELDS(X) \
  X(code, ZC_F_CODE) \
  X(message, ZC_F_TEXT) \
  X(status, ZC_F_SUCCESS) \
  X(details, ZC_F_STRINGS)

/* Expanders. A unit makes its tables with them, e.g.
**   static const zc_field f[] = { ZC_UPDATE_FIELDS(ZC_FIELD) { NULL, 0 } };
**   static const char *const k[] = { ZC_UPDATE_FIELDS(ZC_FIELD_NAME) NULL };
** a message's list of names, "a, b, c", as ZC_FIELD_NAMES(ZC_UPDATE_FIELDS)
** (a string literal, built at compile time), and the number of fields as
** ZC_NFIELDS(ZC_UPDATE_FIELDS) (a constant expression). */
typedef struct zc_field {
  const char *name;
  int kind;
} zc_field;

#define ZC_FIELD(name, kind) { #name, kind },
#define ZC_FIELD_NAME(name, kind) #name,
#define ZC_FIELD_COUNT(name, kind) + 1
#define ZC_NFIELDS(list) (0 list(ZC_FIELD_COUNT))
#define ZC_FIELD_SEP_NAME(name, kind) ", " #name
#define ZC_FIELD_NAMES(list) (("" list(ZC_FIELD_SEP_NAME)) + 2)

#endif
