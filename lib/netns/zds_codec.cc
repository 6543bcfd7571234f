// The ZDS codec: our C++ structs <-> istio.workload.zds protobuf bytes.
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "ambient/base/utf8.h"
#include "ambient/netns/zds.h"
#include "netns/zds.pb.h"

namespace ambient::netns::zds {
namespace {

namespace pb = ::istio::workload::zds;

absl::Status CheckText(absl::string_view field, const std::string& value) {
  if (!IsUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat("ZDS ", field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

absl::Status TooBig(size_t size) {
  return absl::InvalidArgumentError(
      absl::StrCat("ZDS message of ", size, " bytes exceeds the ", kMaxMessageSize, "-byte limit"));
}

}  // namespace

const char* RequestTypeName(RequestType type) {
  switch (type) {
    case RequestType::kAdd:
      return "add";
    case RequestType::kKeep:
      return "keep";
    case RequestType::kDel:
      return "del";
    case RequestType::kSnapshotSent:
      return "snapshot_sent";
  }
  return "unknown";
}

std::string EncodeHello() {
  pb::ZdsHello hello;
  hello.set_version(pb::V1);
  return hello.SerializeAsString();
}

absl::Status DecodeHello(absl::string_view bytes) {
  if (bytes.size() > kMaxMessageSize) return TooBig(bytes.size());
  pb::ZdsHello hello;
  if (!hello.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("malformed ZdsHello");
  }
  if (hello.version() != pb::V1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported ZDS version ", static_cast<int>(hello.version()), " (want V1 = 1)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeRequest(const Request& request) {
  absl::Status text = CheckText("uid", request.uid);
  text.Update(CheckText("workload name", request.workload_info.name));
  text.Update(CheckText("workload namespace", request.workload_info.ns));
  text.Update(CheckText("service account", request.workload_info.service_account));
  if (!text.ok()) return text;
  pb::WorkloadRequest req;
  switch (request.type) {
    case RequestType::kAdd: {
      pb::AddWorkload* add = req.mutable_add();
      add->set_uid(request.uid);
      if (request.has_workload_info) {
        pb::WorkloadInfo* info = add->mutable_workload_info();
        info->set_name(request.workload_info.name);
        info->set_namespace_(request.workload_info.ns);
        info->set_service_account(request.workload_info.service_account);
      }
      break;
    }
    case RequestType::kKeep:
      req.mutable_keep()->set_uid(request.uid);
      break;
    case RequestType::kDel:
      req.mutable_del()->set_uid(request.uid);
      break;
    case RequestType::kSnapshotSent:
      req.mutable_snapshot_sent();
      break;
  }
  if (req.ByteSizeLong() > kMaxMessageSize) return TooBig(req.ByteSizeLong());
  return req.SerializeAsString();
}

absl::StatusOr<Request> DecodeRequest(absl::string_view bytes) {
  if (bytes.size() > kMaxMessageSize) return TooBig(bytes.size());
  pb::WorkloadRequest req;
  if (!req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("malformed WorkloadRequest");
  }
  Request out;
  switch (req.payload_case()) {
    case pb::WorkloadRequest::kAdd:
      out.type = RequestType::kAdd;
      out.uid = req.add().uid();
      out.has_workload_info = req.add().has_workload_info();
      out.workload_info.name = req.add().workload_info().name();
      out.workload_info.ns = req.add().workload_info().namespace_();
      out.workload_info.service_account = req.add().workload_info().service_account();
      break;
    case pb::WorkloadRequest::kKeep:
      out.type = RequestType::kKeep;
      out.uid = req.keep().uid();
      break;
    case pb::WorkloadRequest::kDel:
      out.type = RequestType::kDel;
      out.uid = req.del().uid();
      break;
    case pb::WorkloadRequest::kSnapshotSent:
      out.type = RequestType::kSnapshotSent;
      return out;
    case pb::WorkloadRequest::PAYLOAD_NOT_SET:
      return absl::InvalidArgumentError("WorkloadRequest without a payload");
  }
  if (out.uid.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZDS ", RequestTypeName(out.type), " without a uid"));
  }
  absl::Status text = CheckText("uid", out.uid);
  text.Update(CheckText("workload name", out.workload_info.name));
  text.Update(CheckText("workload namespace", out.workload_info.ns));
  text.Update(CheckText("service account", out.workload_info.service_account));
  if (!text.ok()) return text;
  return out;
}

std::string EncodeAck(absl::string_view error) {
  // Two nested length-delimited headers take at most 6 bytes at this size.
  constexpr size_t kRoom = kMaxMessageSize - 8;
  absl::string_view cut = error.substr(0, kRoom);
  cut = cut.substr(0, Utf8Prefix(cut));
  pb::WorkloadResponse resp;
  resp.mutable_ack()->set_error(std::string(cut));
  return resp.SerializeAsString();
}

absl::StatusOr<std::string> DecodeAck(absl::string_view bytes) {
  if (bytes.size() > kMaxMessageSize) return TooBig(bytes.size());
  pb::WorkloadResponse resp;
  if (!resp.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("malformed WorkloadResponse");
  }
  if (resp.payload_case() != pb::WorkloadResponse::kAck) {
    return absl::InvalidArgumentError("WorkloadResponse without an ack");
  }
  return resp.ack().error();
}

}  // namespace ambient::netns::zds
