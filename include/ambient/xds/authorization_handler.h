// ambient/xds/authorization_handler.h: istio.security.Authorization resources
// into an authz::PolicyStore.
//
// Object model. An AuthorizationHandler is the TypeHandler (delta_ads.h) for
// type.googleapis.com/istio.security.Authorization. Each resource is one
// Authorization named "namespace/name"; it is decoded with
// authz::DecodePolicyProto (policy_codec.h: scope, action, dry_run, rules,
// clauses and every match field including the not_* ones, with that decoder's
// strictness) and upserted into the borrowed store under that key. A resource
// that does not decode, or whose name is not its own "namespace/name", is
// rejected and changes nothing; the others are applied. Removed names are
// removed from the store (unknown ones are ignored). One response is one
// PolicyStore::Apply: a single snapshot for the whole push.
//
// Threads: Apply runs on one thread at a time (the session's); the store is
// thread-safe, and checks running meanwhile see the store before or after the
// whole response, never part of it.
#ifndef AMBIENT_XDS_AUTHORIZATION_HANDLER_H_
#define AMBIENT_XDS_AUTHORIZATION_HANDLER_H_

#include <string>
#include <vector>

#include "ambient/authz/policy_store.h"
#include "ambient/xds/delta_ads.h"

namespace ambient::xds {

class AuthorizationHandler : public TypeHandler {
 public:
  // `store` is borrowed and must outlive the handler.
  explicit AuthorizationHandler(authz::PolicyStore* store) : store_(store) {}

  // Apply upserts each update, then removes each removed name. A rejection's
  // reason is the decoder's error message, or "resource name must be the
  // policy's \"namespace/name\" \"K\"".
  std::vector<Rejection> Apply(const std::vector<ResourceUpdate>& updates,
                               const std::vector<std::string>& removed) override;

 private:
  authz::PolicyStore* store_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_AUTHORIZATION_HANDLER_H_
