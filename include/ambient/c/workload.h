/* ambient/c/workload.h: the description of a workload that several calls
 * take (the ZDS agent's pods in ambient/c/netns.h; the HBONE server's and
 * client's own workload and the node proxy's workloads and pods in
 * ambient/c/runtime.h). It is an option object made the way
 * ambient/c/common.h describes.
 *
 * Threads: one object from one thread at a time; the calls that take it
 * only read it. */
#ifndef AMBIENT_C_WORKLOAD_H_
#define AMBIENT_C_WORKLOAD_H_

#include "ambient/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An ambient_workload_info describes a workload by named text fields, plus
 * its addresses and whether it speaks HBONE. Each call that takes one reads
 * the fields it documents and ignores the others; the call copies what it
 * reads. */
typedef struct ambient_workload_info ambient_workload_info;

/* ambient_workload_field names a text field of an ambient_workload_info. */
typedef enum ambient_workload_field {
  AMBIENT_WORKLOAD_UID = 0,                /* the pod's uid */
  AMBIENT_WORKLOAD_NAME = 1,               /* workload name (e.g. the deployment) */
  AMBIENT_WORKLOAD_NAMESPACE = 2,          /* Kubernetes namespace */
  AMBIENT_WORKLOAD_SERVICE_ACCOUNT = 3,    /* service account */
  AMBIENT_WORKLOAD_TRUST_DOMAIN = 4,       /* SPIFFE trust domain */
  AMBIENT_WORKLOAD_TYPE = 5,               /* deployment, cronjob, pod or job */
  AMBIENT_WORKLOAD_CANONICAL_SERVICE = 6,  /* service.istio.io/canonical-name */
  AMBIENT_WORKLOAD_CANONICAL_REVISION = 7, /* service.istio.io/canonical-revision */
  AMBIENT_WORKLOAD_CLUSTER = 8,            /* cluster id */
  AMBIENT_WORKLOAD_REGION = 9,             /* locality region */
  AMBIENT_WORKLOAD_ZONE = 10               /* locality zone */
} ambient_workload_field;

/* ambient_workload_info_new returns a description with every field unknown
 * (""), no addresses and HBONE on, or NULL when out of memory. Free with
 * ambient_workload_info_free. Any thread; one object from one thread at a
 * time. */
AMBIENT_EXPORT ambient_workload_info *ambient_workload_info_new(void);

/* ambient_workload_info_free releases `info`. NULL is allowed. */
AMBIENT_EXPORT void ambient_workload_info_free(ambient_workload_info *info);

/* ambient_workload_info_set sets text field `field` of `info` to `value`
 * (copied; NULL or "" makes it unknown). The value is checked by the call
 * that uses it. Errors (nothing changed): AMBIENT_ERR_INVALID_ARGUMENT for a
 * NULL `info` or a `field` that is no ambient_workload_field. */
AMBIENT_EXPORT ambient_error *ambient_workload_info_set(ambient_workload_info *info,
                                                       ambient_workload_field field,
                                                       const char *value);

/* ambient_workload_info_add_address appends a numeric IP (no port) of the
 * workload (copied; checked by the call that uses it). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_workload_info_add_address(ambient_workload_info *info,
                                                               const char *ip);

/* ambient_workload_info_set_hbone says whether the workload speaks HBONE
 * (`on` non-zero, the default) or only plain TCP. NULL `info` is ignored. */
AMBIENT_EXPORT void ambient_workload_info_set_hbone(ambient_workload_info *info, int on);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_WORKLOAD_H_ */
