// The prepared split file: JSON Lines, header first (docs/formats.md).
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "lrgd/error.h"
#include "lrgd/file.h"
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

const json& field(const json& j, const char* name, const std::string& file, std::uint64_t line) {
  const auto it = j.find(name);
  if (it == j.end()) throw InputError(file, line, name, "missing");
  return *it;
}

std::uint64_t get_uint(const json& j, const char* name, const std::string& file, std::uint64_t line) {
  const json& v = field(j, name, file, line);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    throw InputError(file, line, name, "expected a non-negative integer");
  }
  return v.get<std::uint64_t>();
}

std::string get_string(const json& j, const char* name, const std::string& file, std::uint64_t line) {
  const json& v = field(j, name, file, line);
  if (!v.is_string()) throw InputError(file, line, name, "expected a string");
  return v.get<std::string>();
}

ItemIndex get_index(const json& j, const char* name, const std::string& file, std::uint64_t line) {
  const json& v = field(j, name, file, line);
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX) {
    throw InputError(file, line, name, "expected an index (non-negative integer)");
  }
  return static_cast<ItemIndex>(v.get<std::int64_t>());
}

std::vector<ItemIndex> get_list(const json& j, const char* name, const std::string& file, std::uint64_t line) {
  const json& v = field(j, name, file, line);
  if (!v.is_array()) throw InputError(file, line, name, "expected an array of item indices");
  std::vector<ItemIndex> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() > INT32_MAX) {
      throw InputError(file, line, name, "expected an array of item indices");
    }
    out.push_back(static_cast<ItemIndex>(e.get<std::int64_t>()));
  }
  return out;
}

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
    if (!j.is_object()) throw InputError(file, line_no, "", "expected a JSON object");
    if (!have_header) {
      if (get_string(j, "format", file, line_no) != kFormat) {
        throw InputError(file, line_no, "format", "not a prepared split (expected \"" + std::string(kFormat) + "\")");
      }
      const auto version = get_uint(j, "version", file, line_no);
      if (version != kVersion) {
        throw InputError(
            file, line_no, "version",
            "version " + std::to_string(version) + " is not supported (expected " + std::to_string(kVersion) + ")");
      }
      split.dataset_name = get_string(j, "dataset", file, line_no);
      split.data_hash = get_string(j, "data_hash", file, line_no);
      split.n_users_total = get_uint(j, "n_users_total", file, line_no);
      split.n_items = get_uint(j, "n_items", file, line_no);
      split.n_interactions = get_uint(j, "n_interactions", file, line_no);
      ProtocolOptions& o = split.options;
      o.seed = get_uint(j, "seed", file, line_no);
      o.trial = static_cast<std::uint32_t>(get_uint(j, "trial", file, line_no));
      o.n_users = get_uint(j, "n_users", file, line_no);
      o.max_history = get_uint(j, "max_history", file, line_no);
      o.n_candidates = get_uint(j, "n_candidates", file, line_no);
      const std::string neg = get_string(j, "negatives", file, line_no);
      if (neg != "file") {
        try {
          o.negatives = parse_negatives(neg);
        } catch (const OptionError&) {
          throw InputError(file, line_no, "negatives", "unknown value '" + neg + "'");
        }
      }
      o.candidate_file = get_string(j, "candidate_file", file, line_no);
      split.candidate_file_hash = get_string(j, "candidate_file_hash", file, line_no);
      if (j.contains("candidates_per_trial")) {
        try {
          o.fixed_across_trials = parse_candidates_per_trial(get_string(j, "candidates_per_trial", file, line_no));
        } catch (const OptionError&) {
          throw InputError(file, line_no, "candidates_per_trial", "expected \"redraw\" or \"fixed\"");
        }
      }
      if (j.contains("retriever")) split.retriever_name = get_string(j, "retriever", file, line_no);
      if (j.contains("users_file")) {
        o.users_file = get_string(j, "users_file", file, line_no);
        split.users_file_hash = get_string(j, "users_file_hash", file, line_no);
      }
      split.n_eligible = get_uint(j, "n_eligible", file, line_no);
      have_header = true;
      continue;
    }
    PreparedUser u;
    u.user = get_index(j, "user", file, line_no);
    u.user_id = get_string(j, "user_id", file, line_no);
    u.valid_history = get_list(j, "valid_history", file, line_no);
    u.valid_target = get_index(j, "valid_target", file, line_no);
    u.valid_candidates = get_list(j, "valid_candidates", file, line_no);
    u.test_history = get_list(j, "test_history", file, line_no);
    u.test_target = get_index(j, "test_target", file, line_no);
    u.test_candidates = get_list(j, "test_candidates", file, line_no);
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
