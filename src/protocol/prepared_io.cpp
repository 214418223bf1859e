// The prepared split file: JSON Lines, header first (docs/formats.md).
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/json_fields.h"
#include "lrgd/protocol.h"

namespace lrgd::protocol {

namespace {

constexpr std::string_view kFormat = "lrgd-prepared-split";
constexpr int kVersion = 1;

void put_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out += "\\u00";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void put_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void put_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void put_list(std::string& out, const std::vector<ItemIndex>& v) {
  out.push_back('[');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out.push_back(',');
    put_int(out, v[i]);
  }
  out.push_back(']');
}

void key(std::string& out, std::string_view k, bool first = false) {
  if (!first) out.push_back(',');
  put_string(out, k);
  out.push_back(':');
}

}  // namespace

void write_prepared_split(const PreparedSplit& split, std::ostream& os) {
  const ProtocolOptions& o = split.options;
  std::string out;
  out.reserve(256 + split.users.size() * 800);
  out.push_back('{');
  key(out, "format", true);
  put_string(out, kFormat);
  key(out, "version");
  put_uint(out, kVersion);
  key(out, "dataset");
  put_string(out, split.dataset_name);
  key(out, "data_hash");
  put_string(out, split.data_hash);
  key(out, "n_users_total");
  put_uint(out, split.n_users_total);
  key(out, "n_items");
  put_uint(out, split.n_items);
  key(out, "n_interactions");
  put_uint(out, split.n_interactions);
  key(out, "seed");
  put_uint(out, o.seed);
  key(out, "trial");
  put_uint(out, o.trial);
  key(out, "n_users");
  put_uint(out, o.n_users);
  key(out, "max_history");
  put_uint(out, o.max_history);
  key(out, "n_candidates");
  put_uint(out, o.n_candidates);
  key(out, "negatives");
  put_string(out, o.candidate_file.empty() ? negatives_name(o.negatives) : std::string_view("file"));
  key(out, "candidate_file");
  put_string(out, o.candidate_file.filename().string());
  key(out, "candidate_file_hash");
  put_string(out, split.candidate_file_hash);
  // Written only where they differ from the defaults, so older splits keep their bytes.
  if (o.fixed_across_trials) {
    key(out, "candidates_per_trial");
    put_string(out, candidates_per_trial_name(true));
  }
  if (!split.retriever_name.empty()) {
    key(out, "retriever");
    put_string(out, split.retriever_name);
  }
  if (!o.users_file.empty()) {
    key(out, "users_file");
    put_string(out, o.users_file.filename().string());
    key(out, "users_file_hash");
    put_string(out, split.users_file_hash);
  }
  key(out, "n_eligible");
  put_uint(out, split.n_eligible);
  key(out, "n_selected");
  put_uint(out, split.users.size());
  out += "}\n";
  for (const auto& u : split.users) {
    out.push_back('{');
    key(out, "user", true);
    put_int(out, u.user);
    key(out, "user_id");
    put_string(out, u.user_id);
    key(out, "valid_history");
    put_list(out, u.valid_history);
    key(out, "valid_target");
    put_int(out, u.valid_target);
    key(out, "valid_candidates");
    put_list(out, u.valid_candidates);
    key(out, "test_history");
    put_list(out, u.test_history);
    key(out, "test_target");
    put_int(out, u.test_target);
    key(out, "test_candidates");
    put_list(out, u.test_candidates);
    out += "}\n";
  }
  os.write(out.data(), static_cast<std::streamsize>(out.size()));
}

void write_prepared_split(const PreparedSplit& split, const std::filesystem::path& path) {
  std::ostringstream out;
  write_prepared_split(split, out);
  write_file_atomic(path, out.str());
}

namespace {

using nlohmann::json;
namespace jf = json_fields;

}  // namespace

PreparedSplit read_prepared_split(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read " + file);
  PreparedSplit split;
  std::string line;
  std::uint64_t line_no = 0;
  bool have_header = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw InputError(file, line_no, "", std::string("malformed JSON: ") + e.what());
    }
    const jf::Where at{file, line_no};
    jf::as_object(j, at);
    if (!have_header) {
      if (jf::get_string(j, "format", at) != kFormat) {
        throw InputError(file, line_no, "format", "not a prepared split (expected \"" + std::string(kFormat) + "\")");
      }
      const auto version = jf::get_uint(j, "version", at);
      if (version != kVersion) {
        throw InputError(
            file, line_no, "version",
            "version " + std::to_string(version) + " is not supported (expected " + std::to_string(kVersion) + ")");
      }
      split.dataset_name = jf::get_string(j, "dataset", at);
      split.data_hash = jf::get_string(j, "data_hash", at);
      split.n_users_total = jf::get_uint(j, "n_users_total", at);
      split.n_items = jf::get_uint(j, "n_items", at);
      split.n_interactions = jf::get_uint(j, "n_interactions", at);
      ProtocolOptions& o = split.options;
      o.seed = jf::get_uint(j, "seed", at);
      o.trial = jf::get_integer<std::uint32_t>(j, "trial", at);
      o.n_users = jf::get_uint(j, "n_users", at);
      o.max_history = jf::get_uint(j, "max_history", at);
      o.n_candidates = jf::get_uint(j, "n_candidates", at);
      const std::string neg = jf::get_string(j, "negatives", at);
      if (neg != "file") {
        try {
          o.negatives = parse_negatives(neg);
        } catch (const OptionError&) {
          throw InputError(file, line_no, "negatives", "unknown value '" + neg + "'");
        }
      }
      o.candidate_file = jf::get_string(j, "candidate_file", at);
      split.candidate_file_hash = jf::get_string(j, "candidate_file_hash", at);
      if (j.contains("candidates_per_trial")) {
        try {
          o.fixed_across_trials = parse_candidates_per_trial(jf::get_string(j, "candidates_per_trial", at));
        } catch (const OptionError&) {
          throw InputError(file, line_no, "candidates_per_trial", "expected \"redraw\" or \"fixed\"");
        }
      }
      if (j.contains("retriever")) split.retriever_name = jf::get_string(j, "retriever", at);
      if (j.contains("users_file")) {
        o.users_file = jf::get_string(j, "users_file", at);
        split.users_file_hash = jf::get_string(j, "users_file_hash", at);
      }
      split.n_eligible = jf::get_uint(j, "n_eligible", at);
      have_header = true;
      continue;
    }
    PreparedUser u;
    u.user = jf::get_integer<ItemIndex>(j, "user", at, 0);
    u.user_id = jf::get_string(j, "user_id", at);
    u.valid_history = jf::get_integer_list<ItemIndex>(j, "valid_history", at, 0);
    u.valid_target = jf::get_integer<ItemIndex>(j, "valid_target", at, 0);
    u.valid_candidates = jf::get_integer_list<ItemIndex>(j, "valid_candidates", at, 0);
    u.test_history = jf::get_integer_list<ItemIndex>(j, "test_history", at, 0);
    u.test_target = jf::get_integer<ItemIndex>(j, "test_target", at, 0);
    u.test_candidates = jf::get_integer_list<ItemIndex>(j, "test_candidates", at, 0);
    split.users.push_back(std::move(u));
  }
  if (in.bad()) throw IoError("read error on " + file);
  if (!have_header) throw InputError(file, 0, "", "empty file: expected a prepared split header");
  return split;
}

void check_prepared_split(const PreparedSplit& split, const Dataset& ds, const std::string& file) {
  if (split.data_hash != ds.content_hash) {
    throw InputError(file, 1, "data_hash",
                     "prepared from other data (" + split.data_hash + ", the dataset is " + ds.content_hash + ")");
  }
  if (split.n_items != ds.n_items() || split.n_users_total != ds.n_users()) {
    throw InputError(file, 1, "n_items", "sizes differ from the dataset");
  }
  std::uint64_t line = 1;
  for (const auto& u : split.users) {
    ++line;
    if (u.user < 0 || static_cast<std::size_t>(u.user) >= ds.n_users() ||
        ds.user_ids[static_cast<std::size_t>(u.user)] != u.user_id) {
      throw InputError(file, line, "user",
                       "user " + std::to_string(u.user) + " ('" + u.user_id + "') is not in the dataset");
    }
    for (const auto* list : {&u.valid_history, &u.valid_candidates, &u.test_history, &u.test_candidates}) {
      for (const ItemIndex i : *list) {
        if (i < 0 || static_cast<std::size_t>(i) >= ds.n_items()) {
          throw InputError(file, line, "items", "item index " + std::to_string(i) + " is out of range");
        }
      }
    }
  }
}

}  // namespace lrgd::protocol
