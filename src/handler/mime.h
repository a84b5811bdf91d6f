/*
 * mime.h - Content-Type by file-name extension.
 *
 * The table comes from /etc/mime.types (Debian's media-types package), parsed once into a hash,
 * with built-in defaults for the types a web site cannot do without when the file is absent.
 * Every type is returned ready to send: text types, JavaScript and JSON carry
 * "; charset=utf-8".
 */
#ifndef PT_HANDLER_MIME_H
#define PT_HANDLER_MIME_H

#include <stddef.h>

#define PT_MIME_DEFAULT "application/octet-stream"
#define PT_MIME_SYSTEM_FILE "/etc/mime.types"

struct pt_mime_table;

/*
 * Builds a table from a mime.types file (lines "type ext ext ..."; '#' comments) merged over
 * the built-in defaults: an extension the file lists takes the file's type. path NULL, or a
 * file that cannot be read, gives the built-in defaults alone. Returns NULL only when out of
 * memory. The caller owns the table (pt_mime_table_free). Blocks on file I/O: call at startup.
 */
struct pt_mime_table *pt_mime_table_load(const char *path);
void pt_mime_table_free(struct pt_mime_table *t);

/*
 * Content-Type for a file name (a path is fine: only the part after the last '/' counts).
 * Extensions compare case-insensitively; a name with several dots tries its longest suffix
 * first ("x.spdx.json" before "json"). Returns a string owned by the table (or a static one),
 * PT_MIME_DEFAULT when nothing matches. Never NULL. t NULL uses the built-in defaults.
 */
const char *pt_mime_table_lookup(const struct pt_mime_table *t, const char *name, size_t len);

/*
 * The same over the process-wide table, loaded from PT_MIME_SYSTEM_FILE on first use (once,
 * thread-safe; the first call may block on reading the file, so call pt_mime_init at startup).
 */
void pt_mime_init(void);
const char *pt_mime_type(const char *name, size_t len);

#endif
