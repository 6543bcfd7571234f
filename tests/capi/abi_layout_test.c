/* The C ABI's layout, pinned: every public enum is an int (the Go and Rust
 * bindings pass them as C int / c_int), and the two public structs have the
 * size and field offsets the Rust -sys crate declares (checked from the Rust
 * side too: bindings/rust/ambient-sys/tests/abi.rs; Go reads the fields
 * through cgo by name). Changing any of these is an ABI break: this test is
 * meant to fail then. check_abi_layout_complete.sh fails when a header gains
 * an enum or struct this file does not list. */
#include <stddef.h>
#include <stdio.h>

#include "ambient/ambient.h"

static int failures = 0;

static void expect_size(const char* what, size_t got, size_t want) {
  if (got != want) {
    fprintf(stderr, "%s: %zu, want %zu\n", what, got, want);
    ++failures;
  }
}

#define ENUM_IS_INT(type) expect_size("sizeof(" #type ")", sizeof(type), sizeof(int))
#define OFFSET(type, field, want) \
  expect_size("offsetof(" #type ", " #field ")", offsetof(type, field), want)

int main(void) {
  /* Every typedef enum in the headers under include/ambient/c. */
  ENUM_IS_INT(ambient_code);
  ENUM_IS_INT(ambient_log_level);
  ENUM_IS_INT(ambient_hbone_role);
  ENUM_IS_INT(ambient_hbone_event_type);
  ENUM_IS_INT(ambient_hbone_reset_code);
  ENUM_IS_INT(ambient_spiffe_id_error);
  ENUM_IS_INT(ambient_svid_error);
  ENUM_IS_INT(ambient_listener_kind);
  ENUM_IS_INT(ambient_transparency);
  ENUM_IS_INT(ambient_zds_event);
  ENUM_IS_INT(ambient_redirect_backend);
  ENUM_IS_INT(ambient_workload_field);
  ENUM_IS_INT(ambient_hbone_limit);
  ENUM_IS_INT(ambient_ca_state);

  /* Enumerators that name a slot (a field, a limit) keep their numbers. */
  if (AMBIENT_WORKLOAD_UID != 0 || AMBIENT_WORKLOAD_TYPE != 5 || AMBIENT_WORKLOAD_ZONE != 10 ||
      AMBIENT_HBONE_MAX_CONNECTIONS != 0 || AMBIENT_HBONE_SILENT_TIMEOUT_MS != 2 ||
      AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY != 4 || AMBIENT_CA_INITIALIZING != 0 ||
      AMBIENT_CA_AVAILABLE != 1 || AMBIENT_CA_UNAVAILABLE != 2) {
    fprintf(stderr, "ambient_workload_field or ambient_hbone_limit values moved\n");
    ++failures;
  }

  /* The negative codes must survive the trip through int (hot-path return
   * values) and stay distinct from success. */
  if ((int)AMBIENT_ERR_WOULD_BLOCK >= 0 || (int)AMBIENT_ERR_INVALID_ARGUMENT != -1) {
    fprintf(stderr, "ambient_code values moved\n");
    ++failures;
  }

#if defined(__LP64__)
  /* Every public (non-opaque) struct, on LP64 (x86-64, arm64 Linux). */
  expect_size("sizeof(ambient_hbone_header)", sizeof(ambient_hbone_header), 32);
  OFFSET(ambient_hbone_header, name, 0);
  OFFSET(ambient_hbone_header, name_len, 8);
  OFFSET(ambient_hbone_header, value, 16);
  OFFSET(ambient_hbone_header, value_len, 24);

  expect_size("sizeof(ambient_hbone_event)", sizeof(ambient_hbone_event), 56);
  OFFSET(ambient_hbone_event, type, 0);
  OFFSET(ambient_hbone_event, stream, 4);
  OFFSET(ambient_hbone_event, http_status, 8);
  OFFSET(ambient_hbone_event, code, 12);
  OFFSET(ambient_hbone_event, message, 16);
  OFFSET(ambient_hbone_event, message_len, 24);
  OFFSET(ambient_hbone_event, authority, 32);
  OFFSET(ambient_hbone_event, authority_len, 40);
  OFFSET(ambient_hbone_event, n_headers, 48);
#else
  fprintf(stderr, "abi_layout_test: not LP64, struct layouts NOT checked\n");
#endif

  if (failures != 0) {
    fprintf(stderr, "%d ABI layout check(s) failed\n", failures);
    return 1;
  }
  printf("C ABI layout as pinned\n");
  return 0;
}
