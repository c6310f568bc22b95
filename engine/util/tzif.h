/* tzif.h - the system's time zone database, read from its TZif files.
 *
 * Zones come from the IANA tz database as the operating system installs it
 * (Debian's tzdata package: /usr/share/zoneinfo, or $TZDIR), so a building's
 * zone follows the rules the distribution ships and updates, not a copy
 * frozen into a library.  A zone name is valid when the database lists it
 * (tzdata.zi: its zones and links); its file (RFC 8536, versions 1-4) is
 * read once per process, checked, and kept: the transitions of its table,
 * then its footer's POSIX TZ rule for every later instant.
 *
 * Thread-safe; a zone once found stays valid until the process ends. */
#ifndef ENG_TZIF_H
#define ENG_TZIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tzif_zone;

/* The zone called `name` ("Europe/Paris", "UTC", "US/Eastern"), loaded on
 * first use; NULL when the database does not list the name or its file
 * cannot be read as a zone.  `name` must already be a plain zone id
 * (letters, digits, '/', '_', '-', '+'; no "." anywhere). */
const struct tzif_zone *tzif_find(const char *name);

/* The UTC offset (seconds east of UTC) in force at instant t, and the span
 * [*from, *until) of instants around t over which the zone keeps that
 * offset (INT64_MIN / INT64_MAX when unbounded).  A span may end where the
 * offset does not change (a change of abbreviation only). */
int64_t tzif_offset(const struct tzif_zone *zone, int64_t t, int64_t *from, int64_t *until);

/* For tests: a zone from the bytes of a TZif file, or from a POSIX TZ rule
 * alone as a footer spells it ("CET-1CEST,M3.5.0,M10.5.0/3", "<+0330>-3:30")
 * with no table.  NULL when malformed; free with tzif_zone_free. */
struct tzif_zone *tzif_zone_from_bytes(const unsigned char *bytes, size_t len);
struct tzif_zone *tzif_zone_from_rule(const char *rule);
void tzif_zone_free(struct tzif_zone *zone);

#endif
