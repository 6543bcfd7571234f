/* Shared by ambientctl's subcommand files. Exit statuses: 0 success, 1 failure
 * (reason on stderr), 2 usage error. */
#ifndef AMBIENTCTL_H_
#define AMBIENTCTL_H_

#include "ambient/ambient.h"

enum { AMBIENTCTL_OK = 0, AMBIENTCTL_FAIL = 1, AMBIENTCTL_USAGE = 2 };

/* Each group takes argv with argv[0] = the group name ("spiffe", ...). */
int ambientctl_spiffe(int argc, char **argv);
int ambientctl_rules(int argc, char **argv);
int ambientctl_zds(int argc, char **argv);
int ambientctl_hbone(int argc, char **argv);

/* ambientctl_fail prints "ambientctl: <what>: <error message>" to stderr, frees
 * `err` and returns AMBIENTCTL_FAIL. */
int ambientctl_fail(const char *what, ambient_error *err);

/* ambientctl_is_help reports whether `arg` is -h or --help. */
int ambientctl_is_help(const char *arg);

#endif /* AMBIENTCTL_H_ */
