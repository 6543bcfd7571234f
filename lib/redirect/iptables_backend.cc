#include "redirect/iptables_backend.h"

#include <algorithm>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ambient/redirect/render.h"
#include "redirect/drift_diff.h"
#include "redirect/exec_in_netns.h"

namespace ambient::redirect::internal {
namespace {

absl::StatusOr<IptablesTools> ToolsFor(bool legacy, bool plain) {
  IptablesTools t;
  t.legacy = legacy;
  const std::string infix = plain ? "" : (legacy ? "-legacy" : "-nft");
  absl::StatusOr<std::string> restore = FindProgram(absl::StrCat("iptables", infix, "-restore"));
  absl::StatusOr<std::string> save = FindProgram(absl::StrCat("iptables", infix, "-save"));
  if (!restore.ok()) return restore.status();
  if (!save.ok()) return save.status();
  t.restore = *restore;
  t.save = *save;
  absl::StatusOr<std::string> restore6 = FindProgram(absl::StrCat("ip6tables", infix, "-restore"));
  absl::StatusOr<std::string> save6 = FindProgram(absl::StrCat("ip6tables", infix, "-save"));
  if (restore6.ok() && save6.ok()) {
    t.restore6 = *restore6;
    t.save6 = *save6;
  }
  return t;
}

// The chain a "-j TARGET" (or "-g TARGET") in `line` names, or "".
std::string TargetOf(absl::string_view line) {
  std::vector<absl::string_view> tokens = absl::StrSplit(line, ' ', absl::SkipEmpty());
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i] == "-j" || tokens[i] == "-g") return std::string(tokens[i + 1]);
  }
  return "";
}

}  // namespace

absl::StatusOr<IptablesTools> Tools(IptablesVariant variant) {
  if (variant == IptablesVariant::kLegacy) return ToolsFor(true, false);
  if (variant == IptablesVariant::kNft) return ToolsFor(false, false);
  // Detected once, in the caller's (host) namespace, as istio-cni does:
  // legacy when iptables-legacy-save shows rules, else nft, else plain.
  static std::once_flag once;
  static absl::StatusOr<IptablesTools>* detected = nullptr;
  std::call_once(once, [] {
    bool legacy = false;
    if (absl::StatusOr<std::string> legacy_save = FindProgram("iptables-legacy-save");
        legacy_save.ok()) {
      absl::StatusOr<ExecResult> r = ExecIn(nullptr, {*legacy_save}, "");
      if (r.ok() && r->exit_code == 0) {
        for (absl::string_view line : absl::StrSplit(r->out, '\n')) {
          if (absl::StartsWith(line, "-A ")) legacy = true;
        }
      }
    }
    absl::StatusOr<IptablesTools> tools = ToolsFor(legacy, false);
    if (!tools.ok()) tools = ToolsFor(legacy, true);
    detected = new absl::StatusOr<IptablesTools>(std::move(tools));
  });
  return *detected;
}

bool IptState::empty() const {
  for (const auto& [name, t] : tables) {
    if (!t.chains.empty() || !t.jumps.empty()) return false;
  }
  return true;
}

std::set<std::string> OurChains(bool host) {
  if (host) return {"ISTIO_POSTRT"};
  return {"ISTIO_PRERT", "ISTIO_OUTPUT"};
}

IptState ParseSave(const std::string& save_output, const std::set<std::string>& ours) {
  IptState state;
  std::string table;
  std::map<std::string, int> positions;  // per chain, in the current table
  for (absl::string_view line : absl::StrSplit(save_output, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      table = std::string(absl::StripLeadingAsciiWhitespace(line.substr(1)));
      positions.clear();
      continue;
    }
    if (line == "COMMIT") {
      table.clear();
      continue;
    }
    if (table.empty()) continue;
    if (line[0] == ':') {
      std::string chain(line.substr(1, line.find(' ') == absl::string_view::npos
                                           ? absl::string_view::npos
                                           : line.find(' ') - 1));
      if (ours.count(chain)) state.tables[table].chains.push_back(chain);
      continue;
    }
    if (!absl::StartsWith(line, "-A ")) continue;
    absl::string_view rest = line.substr(3);
    std::string chain(rest.substr(0, rest.find(' ')));
    if (ours.count(chain)) {
      state.tables[table].rules[chain].push_back(std::string(line));
      continue;
    }
    int position = ++positions[chain];
    if (ours.count(TargetOf(line))) {
      state.tables[table].jumps.push_back({chain, position, std::string(line)});
    }
  }
  // Drop tables where nothing of ours was seen.
  for (auto it = state.tables.begin(); it != state.tables.end();) {
    if (it->second.chains.empty() && it->second.jumps.empty() && it->second.rules.empty()) {
      it = state.tables.erase(it);
    } else {
      ++it;
    }
  }
  return state;
}

IptState Expected(const IptRuleset& ruleset) {
  IptState state;
  for (const IptRule& r : ruleset.rules) {
    IptState::Table& t = state.tables[r.table];
    std::string line = SaveFormOf(r, ruleset.family);
    if (IsBuiltinChain(r.chain)) {
      t.jumps.push_back({r.chain, r.insert_position, line});
    } else {
      if (std::find(t.chains.begin(), t.chains.end(), r.chain) == t.chains.end()) {
        t.chains.push_back(r.chain);
      }
      t.rules[r.chain].push_back(line);
    }
    if (r.target.kind == IptTarget::Kind::kJump &&
        std::find(t.chains.begin(), t.chains.end(), r.target.text) == t.chains.end()) {
      t.chains.push_back(r.target.text);
    }
  }
  return state;
}

void DiffState(IpFamily family, const IptState& want, const IptState& have,
               std::vector<Drift>* out) {
  const std::string fam = family == IpFamily::kIPv4 ? "ipv4" : "ipv6";
  std::set<std::string> tables;
  for (const auto& [name, t] : want.tables) tables.insert(name);
  for (const auto& [name, t] : have.tables) tables.insert(name);
  static const IptState::Table kEmpty;
  for (const std::string& table : tables) {
    auto w = want.tables.find(table);
    auto h = have.tables.find(table);
    const IptState::Table& wt = w == want.tables.end() ? kEmpty : w->second;
    const IptState::Table& ht = h == have.tables.end() ? kEmpty : h->second;
    const std::string where = absl::StrCat("iptables ", fam, " ", table);
    for (const std::string& c : wt.chains) {
      if (std::find(ht.chains.begin(), ht.chains.end(), c) == ht.chains.end()) {
        out->push_back({Drift::Kind::kMissing, where, absl::StrCat("chain ", c)});
      }
    }
    for (const std::string& c : ht.chains) {
      if (std::find(wt.chains.begin(), wt.chains.end(), c) == wt.chains.end()) {
        out->push_back({Drift::Kind::kExtra, where, absl::StrCat("chain ", c)});
      }
    }
    std::set<std::string> chains;
    for (const auto& [c, r] : wt.rules) chains.insert(c);
    for (const auto& [c, r] : ht.rules) chains.insert(c);
    for (const std::string& c : chains) {
      auto wr = wt.rules.find(c);
      auto hr = ht.rules.find(c);
      DiffRules(absl::StrCat(where, " ", c),
                wr == wt.rules.end() ? std::vector<std::string>{} : wr->second,
                hr == ht.rules.end() ? std::vector<std::string>{} : hr->second, out);
    }
    std::vector<std::string> wj, hj;
    for (const auto& j : wt.jumps) wj.push_back(j.line);
    for (const auto& j : ht.jumps) hj.push_back(j.line);
    std::sort(wj.begin(), wj.end());
    std::sort(hj.begin(), hj.end());
    if (wj != hj) DiffRules(absl::StrCat(where, " jumps"), wj, hj, out);
    // A jump istio inserts at a position (the host's "-I POSTROUTING 1",
    // which must run before other SNAT/MASQUERADE rules) drifts when
    // another rule got in front of it.
    // (Duplicates are reported above; here a jump is in place when any copy
    // of it is.)
    for (const IptState::Jump& w : wt.jumps) {
      if (w.position <= 0) continue;
      bool in_place = false;
      const IptState::Jump* elsewhere = nullptr;
      for (const IptState::Jump& h : ht.jumps) {
        if (h.chain != w.chain || h.line != w.line) continue;
        if (h.position == w.position) {
          in_place = true;
        } else if (elsewhere == nullptr) {
          elsewhere = &h;
        }
      }
      if (!in_place && elsewhere != nullptr) {
        out->push_back({Drift::Kind::kModified, absl::StrCat(where, " jumps"),
                        absl::StrCat(elsewhere->line, " is rule ", elsewhere->position, " of ",
                                     elsewhere->chain, ", not rule ", w.position)});
      }
    }
  }
}

std::map<std::string, std::vector<std::string>> TargetLines(const IptRuleset& ruleset) {
  std::map<std::string, std::vector<std::string>> lines;
  for (const IptRule& r : ruleset.rules) lines[r.table].push_back(RenderIptablesRule(r));
  return lines;
}

std::map<std::string, std::vector<std::string>> SnapshotLines(const IptState& state) {
  std::map<std::string, std::vector<std::string>> lines;
  for (const auto& [table, t] : state.tables) {
    std::vector<IptState::Jump> jumps = t.jumps;
    std::stable_sort(jumps.begin(), jumps.end(),
                     [](const auto& a, const auto& b) { return a.position < b.position; });
    for (const IptState::Jump& j : jumps) {
      // "-A CHAIN rest" -> "-I CHAIN position rest"
      absl::string_view rest = absl::string_view(j.line).substr(3 + j.chain.size());
      lines[table].push_back(absl::StrCat("-I ", j.chain, " ", j.position, rest));
    }
    for (const std::string& c : t.chains) {
      auto it = t.rules.find(c);
      if (it == t.rules.end()) continue;
      for (const std::string& l : it->second) lines[table].push_back(l);
    }
  }
  return lines;
}

std::string ReconcilePayload(const IptState& have, const IptState& want,
                             const std::map<std::string, std::vector<std::string>>& want_lines) {
  std::set<std::string> tables;
  for (const auto& [name, t] : want.tables) tables.insert(name);
  for (const auto& [name, t] : have.tables) tables.insert(name);
  static const IptState::Table kEmpty;
  std::string out;
  for (const std::string& table : tables) {
    auto w = want.tables.find(table);
    auto h = have.tables.find(table);
    const IptState::Table& wt = w == want.tables.end() ? kEmpty : w->second;
    const IptState::Table& ht = h == have.tables.end() ? kEmpty : h->second;
    absl::StrAppend(&out, "*", table, "\n");
    // A ":CHAIN" line creates a user chain, or flushes it when it exists.
    for (const std::string& c : wt.chains) absl::StrAppend(&out, ":", c, " - [0:0]\n");
    std::vector<std::string> stale;
    for (const std::string& c : ht.chains) {
      if (std::find(wt.chains.begin(), wt.chains.end(), c) == wt.chains.end()) {
        stale.push_back(c);
        absl::StrAppend(&out, ":", c, " - [0:0]\n");
      }
    }
    for (const IptState::Jump& j : ht.jumps) absl::StrAppend(&out, "-D", j.line.substr(2), "\n");
    for (const std::string& c : stale) absl::StrAppend(&out, "-X ", c, "\n");
    auto lines = want_lines.find(table);
    if (lines != want_lines.end()) {
      for (const std::string& l : lines->second) absl::StrAppend(&out, l, "\n");
    }
    absl::StrAppend(&out, "COMMIT\n");
  }
  return out;
}

absl::StatusOr<IptState> ReadState(const IptablesTools& tools, IpFamily family,
                                   const netns::Netns& ns, const std::set<std::string>& ours) {
  const std::string& save = family == IpFamily::kIPv4 ? tools.save : tools.save6;
  if (save.empty()) return absl::NotFoundError("ip6tables-save is not installed");
  absl::StatusOr<ExecResult> r = ExecIn(&ns, {save}, "");
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(save, " failed (exit ", r->exit_code, "): ", absl::StripTrailingAsciiWhitespace(r->err)));
  }
  return ParseSave(r->out, ours);
}

absl::Status Restore(const IptablesTools& tools, IpFamily family, const netns::Netns& ns,
                     const std::string& payload) {
  const std::string& restore = family == IpFamily::kIPv4 ? tools.restore : tools.restore6;
  if (restore.empty()) return absl::NotFoundError("ip6tables-restore is not installed");
  std::vector<std::string> argv = {restore, "--noflush"};
  if (tools.legacy) argv.push_back("--wait=30");
  std::string input = payload;
  if (!input.empty() && input.back() != '\n') input.push_back('\n');
  absl::StatusOr<ExecResult> r = ExecIn(&ns, argv, input);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        restore, " refused the rules (exit ", r->exit_code,
        "): ", absl::StripTrailingAsciiWhitespace(r->err)));
  }
  return absl::OkStatus();
}

}  // namespace ambient::redirect::internal
