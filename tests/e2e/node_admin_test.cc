// The example node proxy's admin endpoint (examples/node-proxy/admin_server.h)
// and its config dump (config_dump.h): the JSON istioctl ztunnel-config and a
// person read, field by field, and the log level changed at run time; bad
// requests get a clear status and change nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "admin_server.h"
#include "ambient/authz/policy_store.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/workload_directory.h"
#include "config_dump.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace ambient::examples {
namespace {

using Json = nlohmann::json;
namespace ts = ambient::test_support;

constexpr char kWebUid[] = "Kubernetes//Pod/shop/web-0";
constexpr char kWebKey[] = "shop/web.shop.svc.cluster.local";

// A directory with a workload that is an endpoint of a service with a VIP,
// and a second, plain-TCP workload that is not.
void Fill(runtime::WorkloadDirectory* d) {
  runtime::Workload w;
  w.uid = kWebUid;
  w.name = "web-0";
  w.ns = "shop";
  w.service_account = "web-sa";
  w.addresses = {"198.18.0.10", "2001:db8::10"};
  w.node = "node-1";
  w.cluster = "Kubernetes";
  w.canonical_service = "web";
  w.canonical_revision = "v1";
  w.locality.region = "eu";
  w.locality.zone = "eu-1";
  w.policies = {"shop/allow-web"};
  w.services[kWebKey] = {{80, 8080}};
  runtime::GatewayAddress wp;
  wp.hostname_namespace = "shop";
  wp.hostname = "waypoint.shop.svc.cluster.local";
  w.waypoint = wp;
  ASSERT_TRUE(d->Upsert(w).ok());

  runtime::Workload legacy;
  legacy.uid = "Kubernetes//Pod/legacy/db-0";
  legacy.name = "db-0";
  legacy.ns = "legacy";
  legacy.addresses = {"198.18.0.20"};
  legacy.hbone = false;
  legacy.healthy = false;
  ASSERT_TRUE(d->Upsert(legacy).ok());

  runtime::Service s;
  s.name = "web";
  s.ns = "shop";
  s.hostname = "web.shop.svc.cluster.local";
  s.vips = {*runtime::ParseNetworkAddress("198.19.0.1"),
            *runtime::ParseNetworkAddress("net2/198.19.0.2")};
  s.ports = {{80, 8080}, {443, 0}};
  s.subject_alt_names = {"spiffe://cluster.local/ns/shop/sa/web-sa"};
  runtime::LoadBalancing lb;
  lb.mode = runtime::LoadBalancing::Mode::kFailover;
  lb.routing_preference = {runtime::LoadBalancing::Scope::kZone,
                           runtime::LoadBalancing::Scope::kRegion};
  lb.allow_unhealthy = true;
  s.load_balancing = lb;
  ASSERT_TRUE(d->UpsertService(s).ok());
}

// An ALLOW policy selected by the web workload, and a global DENY.
void Fill(authz::PolicyStore* store) {
  authz::Policy allow;
  allow.name = "allow-web";
  allow.ns = "shop";
  allow.scope = authz::Scope::kWorkloadSelector;
  allow.action = authz::Action::kAllow;
  authz::Match m;
  m.principals = {authz::StringMatch::Exact("cluster.local/ns/shop/sa/client")};
  m.namespaces = {authz::StringMatch::Presence()};
  m.source_ips = {*authz::IpPrefix::Parse("198.18.0.0/16")};
  m.destination_ports = {8080};
  allow.rules = {authz::Rule{{authz::Clause{{m}}}}};

  authz::Policy deny;
  deny.name = "deny-outsiders";
  deny.ns = "istio-system";
  deny.scope = authz::Scope::kGlobal;
  deny.action = authz::Action::kDeny;
  deny.dry_run = true;
  authz::Match n1;
  n1.not_namespaces = {authz::StringMatch::Prefix("kube-")};
  n1.not_destination_ips = {*authz::IpPrefix::Parse("2001:db8::/32")};
  authz::Match n2;
  n2.service_accounts = {{"legacy", "default"}};
  n2.not_principals = {authz::StringMatch::Suffix("/sa/admin")};
  n2.not_destination_ports = {22};
  deny.rules = {authz::Rule{{authz::Clause{{n1, n2}}}}, authz::Rule{{authz::Clause{{n2}}}}};
  ASSERT_TRUE(store->Replace({allow, deny}).ok());
}

struct Pki {
  ts::Issued ca = ts::Issue(ts::CaSpec("cluster.local", 7));
  ts::Issued leaf = ts::Issue(
      [] {
        ts::CertSpec s = ts::LeafSpec("spiffe://cluster.local/ns/shop/sa/web-sa");
        s.serial = std::numeric_limits<uint64_t>::max();  // needs more than 63 bits
        return s;
      }(),
      &ca);
};

Json Dump(const ConfigDumpSources& sources) {
  std::string text = RenderConfigDump(sources);
  EXPECT_TRUE(absl::EndsWith(text, "}\n"));
  return Json::parse(text);  // throws (fails the test) when it is not JSON
}

TEST(ConfigDumpTest, WorkloadsInZtunnelsShape) {
  runtime::WorkloadDirectory dir;
  Fill(&dir);
  ConfigDumpSources src;
  src.workloads = &dir;
  Json doc = Dump(src);
  ASSERT_EQ(doc["workloads"].size(), 2u);
  // In uid order: the legacy workload first.
  const Json& db = doc["workloads"][0];
  EXPECT_EQ(db["uid"], "Kubernetes//Pod/legacy/db-0");
  EXPECT_EQ(db["protocol"], "TCP");
  EXPECT_EQ(db["status"], "Unhealthy");
  EXPECT_EQ(db["serviceAccount"], "default");
  EXPECT_FALSE(db.contains("waypoint"));
  EXPECT_FALSE(db.contains("services"));
  EXPECT_FALSE(db.contains("node")) << "defaults are left out, as ztunnel does";
  const Json& web = doc["workloads"][1];
  EXPECT_EQ(web["uid"], kWebUid);
  EXPECT_EQ(web["name"], "web-0");
  EXPECT_EQ(web["namespace"], "shop");
  EXPECT_EQ(web["serviceAccount"], "web-sa");
  EXPECT_EQ(web["trustDomain"], "cluster.local");
  EXPECT_EQ(web["workloadIps"], Json({"198.18.0.10", "2001:db8::10"}));
  EXPECT_EQ(web["node"], "node-1");
  EXPECT_EQ(web["clusterId"], "Kubernetes");
  EXPECT_EQ(web["protocol"], "HBONE");
  EXPECT_EQ(web["status"], "Healthy");
  EXPECT_EQ(web["canonicalName"], "web");
  EXPECT_EQ(web["canonicalRevision"], "v1");
  EXPECT_EQ(web["capacity"], 1);
  EXPECT_EQ(web["services"], Json({kWebKey}));
  EXPECT_EQ(web["authorizationPolicies"], Json({"shop/allow-web"}));
  EXPECT_EQ(web["waypoint"]["destination"], "shop/waypoint.shop.svc.cluster.local");
  EXPECT_EQ(web["waypoint"]["hboneMtlsPort"], 15008);
  EXPECT_EQ(web["locality"]["region"], "eu");
  EXPECT_EQ(web["locality"]["zone"], "eu-1");
  EXPECT_EQ(web["locality"]["subzone"], "");
  // Empty sources: empty lists, never missing sections.
  EXPECT_EQ(doc["services"].size(), 1u);
  EXPECT_EQ(doc["policies"], Json::array());
  EXPECT_EQ(doc["certificates"], Json::array());
}

TEST(ConfigDumpTest, ServiceWithVipsPortsAndEndpoints) {
  runtime::WorkloadDirectory dir;
  Fill(&dir);
  ConfigDumpSources src;
  src.workloads = &dir;
  Json doc = Dump(src);
  ASSERT_EQ(doc["services"].size(), 1u);
  const Json& s = doc["services"][0];
  EXPECT_EQ(s["name"], "web");
  EXPECT_EQ(s["namespace"], "shop");
  EXPECT_EQ(s["hostname"], "web.shop.svc.cluster.local");
  // "network/ip", the default network being "".
  EXPECT_EQ(s["vips"], Json({"/198.19.0.1", "net2/198.19.0.2"}));
  EXPECT_EQ(s["ports"], Json({{"80", 8080}, {"443", 0}}));
  ASSERT_EQ(s["endpoints"].size(), 1u) << s.dump(2);
  const Json& ep = s["endpoints"][kWebUid];
  EXPECT_EQ(ep["workloadUid"], kWebUid);
  EXPECT_EQ(ep["port"], Json({{"80", 8080}}));
  EXPECT_EQ(ep["status"], "Healthy");
  EXPECT_EQ(s["subjectAltNames"], Json({"spiffe://cluster.local/ns/shop/sa/web-sa"}));
  EXPECT_FALSE(s.contains("waypoint"));
  EXPECT_EQ(s["loadBalancer"]["mode"], "Failover");
  EXPECT_EQ(s["loadBalancer"]["routingPreferences"], Json({"Zone", "Region"}));
  EXPECT_EQ(s["loadBalancer"]["healthPolicy"], "AllowAll");

  // The dump follows the directory: the endpoint gone, the service gone.
  ASSERT_TRUE(dir.Remove(kWebUid));
  EXPECT_EQ(Dump(src)["services"][0]["endpoints"], Json::object());
  ASSERT_TRUE(dir.RemoveService("shop", "web.shop.svc.cluster.local"));
  EXPECT_EQ(Dump(src)["services"], Json::array());
}

TEST(ConfigDumpTest, AllowAndDenyPolicies) {
  authz::PolicyStore store;
  Fill(&store);
  ConfigDumpSources src;
  src.policies = &store;
  Json doc = Dump(src);
  EXPECT_EQ(doc["workloads"], Json::array());
  ASSERT_EQ(doc["policies"].size(), 2u);
  // In key order: istio-system/... before shop/...
  const Json& deny = doc["policies"][0];
  EXPECT_EQ(deny["name"], "deny-outsiders");
  EXPECT_EQ(deny["namespace"], "istio-system");
  EXPECT_EQ(deny["scope"], "Global");
  EXPECT_EQ(deny["action"], "Deny");
  EXPECT_EQ(deny["dryRun"], true);
  // rules -> clauses -> matches
  ASSERT_EQ(deny["rules"].size(), 2u);
  ASSERT_EQ(deny["rules"][0].size(), 1u);
  ASSERT_EQ(deny["rules"][0][0].size(), 2u);
  const Json& n1 = deny["rules"][0][0][0];
  EXPECT_EQ(n1["notNamespaces"], Json::parse(R"([{"Prefix": "kube-"}])"));
  EXPECT_EQ(n1["notDestinationIps"], Json({"2001:db8::/32"}));
  EXPECT_EQ(n1.size(), 2u) << "empty lists are left out: " << n1.dump();
  const Json& n2 = deny["rules"][0][0][1];
  EXPECT_EQ(n2["serviceAccounts"],
            Json::parse(R"([{"namespace": "legacy", "serviceAccount": "default"}])"));
  EXPECT_EQ(n2["notPrincipals"], Json::parse(R"([{"Suffix": "/sa/admin"}])"));
  EXPECT_EQ(n2["notDestinationPorts"], Json({22}));
  EXPECT_EQ(deny["rules"][1][0][0], n2);

  const Json& allow = doc["policies"][1];
  EXPECT_EQ(allow["name"], "allow-web");
  EXPECT_EQ(allow["namespace"], "shop");
  EXPECT_EQ(allow["scope"], "WorkloadSelector");
  EXPECT_EQ(allow["action"], "Allow");
  EXPECT_EQ(allow["dryRun"], false);
  const Json& m = allow["rules"][0][0][0];
  EXPECT_EQ(m["principals"], Json::parse(R"([{"Exact": "cluster.local/ns/shop/sa/client"}])"));
  EXPECT_EQ(m["namespaces"], Json::parse(R"([{"Presence": []}])"));
  EXPECT_EQ(m["sourceIps"], Json({"198.18.0.0/16"}));
  EXPECT_EQ(m["destinationPorts"], Json({8080}));
}

TEST(ConfigDumpTest, CertificatesWithSerialValidityAndState) {
  Pki pki;
  std::vector<CertDump> certs(3);
  certs[0].identity = "spiffe://cluster.local/ns/shop/sa/web-sa";
  certs[0].state = "Available";
  certs[0].chain_pem = pki.leaf.CertPem();
  certs[0].roots_pem = pki.ca.CertPem();
  certs[1].identity = "spiffe://cluster.local/ns/a/sa/pending";
  certs[1].state = "Initializing";
  certs[2].identity = "spiffe://cluster.local/ns/z/sa/broken";
  certs[2].state = "Available";
  certs[2].chain_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  int calls = 0;
  ConfigDumpSources src;
  src.certificates = [&] {
    ++calls;
    return certs;
  };
  Json doc = Dump(src);
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(doc["certificates"].size(), 3u);
  // In identity order.
  const Json& pending = doc["certificates"][0];
  EXPECT_EQ(pending["identity"], "spiffe://cluster.local/ns/a/sa/pending");
  EXPECT_EQ(pending["state"], "Initializing");
  EXPECT_EQ(pending["certChain"], Json::array());
  EXPECT_EQ(pending["rootCerts"], Json::array());

  const Json& web = doc["certificates"][1];
  EXPECT_EQ(web["identity"], "spiffe://cluster.local/ns/shop/sa/web-sa");
  EXPECT_EQ(web["state"], "Available");
  ASSERT_EQ(web["certChain"].size(), 1u);
  const Json& leaf = web["certChain"][0];
  EXPECT_EQ(leaf["serialNumber"], "18446744073709551615");
  EXPECT_EQ(leaf["validFrom"], "2029-12-31T00:00:00Z");       // kNow - 1 day
  EXPECT_EQ(leaf["expirationTime"], "2030-01-02T00:00:00Z");  // kNow + 1 day
  std::string pem;
  ASSERT_TRUE(absl::Base64Unescape(leaf["pem"].get<std::string>(), &pem));
  EXPECT_EQ(pem, pki.leaf.CertPem()) << "pem is base64 of the certificate's PEM, as in ztunnel";
  ASSERT_EQ(web["rootCerts"].size(), 1u);
  EXPECT_EQ(web["rootCerts"][0]["serialNumber"], "7");
  ASSERT_TRUE(absl::Base64Unescape(web["rootCerts"][0]["pem"].get<std::string>(), &pem));
  EXPECT_EQ(pem, pki.ca.CertPem());

  // A chain that does not parse is reported, not hidden or rendered as garbage.
  const Json& broken = doc["certificates"][2];
  EXPECT_TRUE(absl::StartsWith(broken["state"].get<std::string>(),
                               "Unavailable: certificate chain does not parse: "))
      << broken["state"];
  EXPECT_EQ(broken["certChain"], Json::array());
}

TEST(ConfigDumpTest, ChainPemAndSvidFiles) {
  Pki pki;
  std::string chain = pki.leaf.CertPem() + pki.ca.CertPem();
  auto creds = identity::Credentials::FromPem(chain, pki.leaf.KeyPem());
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(ChainPem(**creds), chain) << "the chain as sent in handshakes, leaf first";

  ts::TempDir dir;
  ASSERT_TRUE(dir.Create("node-admin-test"));
  std::string cert_path = dir.Write("web.pem", chain);
  std::vector<SvidFile> files = {
      {"spiffe://cluster.local/ns/shop/sa/web-sa", cert_path},
      {"spiffe://cluster.local/ns/shop/sa/web-sa", dir.path() + "/other.pem"},  // same identity
      {"spiffe://cluster.local/ns/shop/sa/gone", dir.path() + "/missing.pem"}};
  std::vector<CertDump> dumps = CertDumpsFromFiles(files, pki.ca.CertPem());
  ASSERT_EQ(dumps.size(), 2u);
  EXPECT_EQ(dumps[0].state, "Available");
  EXPECT_EQ(dumps[0].chain_pem, chain);
  EXPECT_EQ(dumps[0].roots_pem, pki.ca.CertPem());
  EXPECT_TRUE(absl::StartsWith(dumps[1].state, "Unavailable: cannot read certificate file "))
      << dumps[1].state;
  EXPECT_TRUE(absl::StrContains(dumps[1].state, "missing.pem")) << dumps[1].state;

  ConfigDumpSources src;
  src.certificates = [&] { return dumps; };
  Json doc = Dump(src);
  // Leaf, then the CA that came in the file: two entries of the chain.
  EXPECT_EQ(doc["certificates"][1]["certChain"].size(), 2u);
}

TEST(ConfigDumpTest, BytesThatAreNotUtf8DoNotBreakTheDocument) {
  authz::PolicyStore store;
  authz::Policy p;
  p.name =
      "bad\xff"
      "name";
  p.ns = "ns";
  store.Upsert(p);
  ConfigDumpSources src;
  src.policies = &store;
  Json doc = Dump(src);
  EXPECT_EQ(doc["policies"][0]["name"], "bad\xEF\xBF\xBDname");
}

// The log level a host keeps, as main.cc does.
struct Level {
  std::atomic<LogLevel> level{LogLevel::kInfo};
  int sets = 0;
  AdminHandlers Handlers(std::string dump = "{}\n") {
    AdminHandlers h;
    h.config_dump = [dump] { return dump; };
    h.log_level = [this] { return level.load(); };
    h.set_log_level = [this](LogLevel l) {
      ++sets;
      level = l;
    };
    return h;
  }
};

std::string StatusLine(const std::optional<std::string>& r) {
  if (!r) return "(incomplete)";
  return r->substr(0, r->find("\r\n"));
}

std::string Body(const std::optional<std::string>& r) {
  if (!r) return "(incomplete)";
  return r->substr(r->find("\r\n\r\n") + 4);
}

TEST(AdminRespondTest, ConfigDumpIsJson) {
  Level lv;
  AdminHandlers h = lv.Handlers("{\"workloads\": []}\n");
  std::optional<std::string> r = AdminRespond("GET /config_dump HTTP/1.1\r\nHost: a\r\n\r\n", h);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::StrContains(*r, "\r\nContent-Type: application/json\r\n")) << *r;
  EXPECT_TRUE(absl::StrContains(*r, "\r\nContent-Length: 18\r\n")) << *r;
  EXPECT_EQ(Body(r), "{\"workloads\": []}\n");
  r = AdminRespond("HEAD /config_dump HTTP/1.1\r\n\r\n", h);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
  EXPECT_EQ(Body(r), "");
  EXPECT_EQ(StatusLine(AdminRespond("POST /config_dump HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(StatusLine(AdminRespond("GET /config_dump?format=json HTTP/1.0\n\n", h)),
            "HTTP/1.1 200 OK");
  EXPECT_FALSE(AdminRespond("GET /config_dump HTTP/1.1\r\n", h)) << "head not complete";
}

TEST(AdminRespondTest, LoggingReadsAndChangesTheLevel) {
  Level lv;
  AdminHandlers h = lv.Handlers();
  std::optional<std::string> r = AdminRespond("GET /logging HTTP/1.1\r\n\r\n", h);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
  EXPECT_EQ(Body(r), "current log level is info\n");
  // POST without a level lists it too (ztunnel's way).
  EXPECT_EQ(Body(AdminRespond("POST /logging HTTP/1.1\r\nContent-Length: 0\r\n\r\n", h)),
            "current log level is info\n");
  EXPECT_EQ(lv.sets, 0);
  for (const char* level : {"debug", "warn", "error", "info"}) {
    r = AdminRespond(std::string("POST /logging?level=") + level + " HTTP/1.1\r\n\r\n", h);
    EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK") << level;
    EXPECT_EQ(Body(r), std::string("current log level is ") + level + "\n");
    EXPECT_EQ(LogLevelName(lv.level), level);
  }
  EXPECT_EQ(lv.sets, 4);
  r = AdminRespond("POST /logging?x=1&level=debug HTTP/1.1\r\n\r\n", h);
  EXPECT_EQ(Body(r), "current log level is debug\n");
  EXPECT_EQ(lv.level, LogLevel::kDebug);
}

TEST(AdminRespondTest, BadLevelsAre400AndChangeNothing) {
  Level lv;
  AdminHandlers h = lv.Handlers();
  for (const char* bad :
       {"verbose", "DEBUG", "trace", "debug,info", "ztunnel::proxy:debug", "debug%20"}) {
    std::string req = std::string("POST /logging?level=") + bad + " HTTP/1.1\r\n\r\n";
    std::optional<std::string> r = AdminRespond(req, h);
    EXPECT_EQ(StatusLine(r), "HTTP/1.1 400 Bad Request") << bad;
    EXPECT_TRUE(absl::StartsWith(Body(r), std::string("Invalid level provided: ") + bad + "\n"))
        << Body(r);
    EXPECT_TRUE(absl::StrContains(Body(r), "debug, info, warn or error")) << Body(r);
  }
  EXPECT_EQ(lv.sets, 0);
  EXPECT_EQ(lv.level, LogLevel::kInfo);
  // A change takes a POST: a GET with a level is refused and changes nothing.
  EXPECT_EQ(StatusLine(AdminRespond("GET /logging?level=debug HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(StatusLine(AdminRespond("PUT /logging?level=debug HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(lv.sets, 0);
  // Echoed input is bounded and printable.
  std::optional<std::string> r =
      AdminRespond("POST /logging?level=" + std::string(500, 'x') + "\x01 HTTP/1.1\r\n\r\n", h);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 400 Bad Request");
  EXPECT_LT(Body(r).size(), 300u);
}

TEST(AdminRespondTest, OtherRequests) {
  Level lv;
  AdminHandlers h = lv.Handlers();
  std::optional<std::string> r = AdminRespond("GET / HTTP/1.1\r\n\r\n", h);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::StrContains(Body(r), "/config_dump")) << Body(r);
  EXPECT_TRUE(absl::StrContains(Body(r), "/logging")) << Body(r);
  EXPECT_EQ(StatusLine(AdminRespond("GET /quitquitquit HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 404 Not Found");
  EXPECT_EQ(StatusLine(AdminRespond("GET /metrics HTTP/1.1\r\n\r\n", h)), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(StatusLine(AdminRespond("GET config_dump HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 400 Bad Request");
  std::string big = "GET /config_dump HTTP/1.1\r\nX: " + std::string(HttpServer::kMaxHead, 'a');
  EXPECT_EQ(StatusLine(AdminRespond(big, h)), "HTTP/1.1 431 Request Header Fields Too Large");
  // A host that wired nothing: an answer, not a crash.
  AdminHandlers none;
  EXPECT_EQ(StatusLine(AdminRespond("GET /config_dump HTTP/1.1\r\n\r\n", none)),
            "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(StatusLine(AdminRespond("POST /logging?level=debug HTTP/1.1\r\n\r\n", none)),
            "HTTP/1.1 500 Internal Server Error");
}

// Fetch sends `request` to 127.0.0.1:`port` and returns the whole answer.
std::string Fetch(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(AdminServerTest, ServesTheLiveDumpAndChangesTheLevel) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  runtime::WorkloadDirectory dir;
  Fill(&dir);
  authz::PolicyStore store;
  Level lv;
  AdminHandlers h = lv.Handlers();
  h.config_dump = [&] {
    ConfigDumpSources src;
    src.workloads = &dir;
    src.policies = &store;
    return RenderConfigDump(src);
  };
  std::vector<std::string> lines;  // written on the loop thread, read after it stopped
  h.log = [&lines](LogLevel level, absl::string_view component, absl::string_view message) {
    lines.push_back(absl::StrCat(LogLevelName(level), " ", component, " ", message));
  };
  auto server = AdminServer::New(loop->get(), "127.0.0.1:0", h);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->address().port();
  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop.load()) (*loop)->RunFor(absl::Milliseconds(20));
  });

  std::string r = Fetch(port, "GET /config_dump HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(absl::StartsWith(r, "HTTP/1.1 200 OK")) << r;
  Json doc = Json::parse(r.substr(r.find("\r\n\r\n") + 4));
  EXPECT_EQ(doc["workloads"].size(), 2u);
  EXPECT_EQ(doc["policies"].size(), 0u);
  Fill(&store);  // a policy push: the next dump shows it
  r = Fetch(port, "GET /config_dump HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Json::parse(r.substr(r.find("\r\n\r\n") + 4))["policies"].size(), 2u);

  r = Fetch(port, "POST /logging?level=debug HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\ncurrent log level is debug\n")) << r;
  EXPECT_EQ(lv.level, LogLevel::kDebug);
  r = Fetch(port, "POST /logging?level=loud HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 400 Bad Request")) << r;
  EXPECT_EQ(lv.level, LogLevel::kDebug);
  EXPECT_TRUE(absl::StartsWith(Fetch(port, "\x16\x03\x01 \xff\r\n\r\n"), "HTTP/1.1 400"));
  EXPECT_EQ(Fetch(port, "GET /conf"), "");
  EXPECT_TRUE(
      absl::EndsWith(Fetch(port, "GET /logging HTTP/1.0\r\n\r\n"), "current log level is debug\n"));
  stop = true;
  runner.join();
  // One debug line per request answered, unprintable bytes masked.
  std::vector<std::string> want = {"debug admin GET /config_dump HTTP/1.1 -> 200",
                                   "debug admin GET /config_dump HTTP/1.1 -> 200",
                                   "debug admin POST /logging?level=debug HTTP/1.1 -> 200",
                                   "debug admin POST /logging?level=loud HTTP/1.1 -> 400",
                                   "debug admin ??? ? -> 400",
                                   "debug admin GET /logging HTTP/1.0 -> 200"};
  EXPECT_EQ(lines, want);
}

TEST(AdminServerTest, BadAddressesAreErrors) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(AdminServer::New(loop->get(), "localhost:15000", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = AdminServer::New(loop->get(), "127.0.0.1:0", {});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(AdminServer::New(loop->get(), (*first)->address().ToString(), {}).ok());
}

TEST(LogLevelTest, NamesRoundTrip) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    EXPECT_EQ(ParseLogLevel(LogLevelName(l)), l);
  }
  EXPECT_FALSE(ParseLogLevel(""));
  EXPECT_FALSE(ParseLogLevel("Info"));
  EXPECT_FALSE(ParseLogLevel("warning"));
}

}  // namespace
}  // namespace ambient::examples
