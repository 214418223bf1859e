// Helpers shared by the data and protocol tests: fixture paths, temporary folders, files.
#pragma once

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "lrgd/dataset.h"
#include "lrgd/error.h"
#include "temp_dir.h"

namespace lrgd::test {

inline std::filesystem::path fixture(const std::string& rel) {
  return std::filesystem::path(LRGD_SOURCE_DIR) / "tests" / "fixtures" / "data" / rel;
}

inline std::filesystem::path shared_data(const std::string& rel) {
  return std::filesystem::path(LRGD_SHARED_DATA_DIR) / rel;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// gzip-compresses `bytes` into `p`.
inline void write_gz(const std::filesystem::path& p, std::string_view bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// The issue of `kind` in `issues`, or nullptr.
// The message of the InputError that `work` throws, or "no error".
template <class F>
std::string input_error_of(F&& work) {
  try {
    work();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

// `text` with the first occurrence of `from` replaced by `to` (unchanged when absent).
inline std::string replace_first(std::string text, std::string_view from, std::string_view to) {
  if (const auto at = text.find(from); at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

inline const data::LoadIssue* find_issue(const std::vector<data::LoadIssue>& issues, std::string_view kind) {
  for (const auto& i : issues) {
    if (i.kind == kind) return &i;
  }
  return nullptr;
}

// Item ids of a user's sequence, space-separated.
inline std::string seq_ids(const data::Dataset& ds, std::size_t user) {
  std::string s;
  for (const auto i : ds.sequences[user]) s += (s.empty() ? "" : " ") + ds.items[static_cast<std::size_t>(i)].id;
  return s;
}

}  // namespace lrgd::test
