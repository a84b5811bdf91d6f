/*
 * keycmd.h - the `portico keygen` and `portico rotate-key` commands.
 */
#ifndef PT_ADMIN_KEYCMD_H
#define PT_ADMIN_KEYCMD_H

/* Runs the command argv[0] ("keygen" or "rotate-key") with its arguments argv[1..argc).
   Prints one line on stdout on success, one error line on stderr otherwise. Returns the exit
   status: 0, 1 (failed) or 2 (usage). Never prints a key or a secret. */
int pt_admin_key_command(int argc, char **argv);

#endif
