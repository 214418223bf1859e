// results.jsonl: parsing records back, torn-line detection, appending with write/fsync,
// atomic rewrites.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "eval_internal.h"
#include "lrgd/error.h"
#include "lrgd/file.h"

namespace lrgd::eval::detail {

namespace {

int get_int(const nlohmann::json& j, const char* name, const std::string& file, std::uint64_t line_no) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) throw InputError(file, line_no, name, "missing or not an integer");
  const auto v = it->get<std::int64_t>();
  if (it->is_number_unsigned() ? it->get<std::uint64_t>() > 0x7fffffffu : v < INT32_MIN || v > INT32_MAX)
    throw InputError(file, line_no, name, "out of range");
  return static_cast<int>(v);
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Record parse_record(std::string line, const std::string& file, std::uint64_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, line_no, "", std::string("not a JSON line: ") + e.what());
  }
  if (!j.is_object()) throw InputError(file, line_no, "", "not a JSON object");
  Record r;
  const int trial = get_int(j, "trial", file, line_no);
  const int draw = get_int(j, "draw", file, line_no);
  if (trial < 0 || draw < 0) throw InputError(file, line_no, "trial", "negative trial or draw");
  r.trial = static_cast<std::uint32_t>(trial);
  r.draw = static_cast<std::size_t>(draw);
  const auto user = j.find("user");
  if (user == j.end() || !user->is_string()) throw InputError(file, line_no, "user", "missing or not a string");
  r.user = user->get<std::string>();
  const auto rank = j.find("target_rank");
  if (rank == j.end()) throw InputError(file, line_no, "target_rank", "missing");
  r.target_rank = rank->is_null() ? metrics::kNotRanked : get_int(j, "target_rank", file, line_no);
  const auto valid = j.find("valid");
  if (valid == j.end() || !valid->is_boolean()) throw InputError(file, line_no, "valid", "missing or not a boolean");
  r.valid = valid->get<bool>();
  const auto err = j.find("error");
  r.failed = err != j.end() && err->is_string() && !err->get<std::string>().empty();
  r.n_hallucinated = get_int(j, "n_hallucinated", file, line_no);
  r.n_duplicates = get_int(j, "n_duplicates", file, line_no);
  r.n_prompt_tokens = get_int(j, "n_prompt_tokens", file, line_no);
  r.n_generated_tokens = get_int(j, "n_generated_tokens", file, line_no);
  // Runs written before score-mode accounting have no such field: nothing was counted.
  r.n_scored_tokens = j.contains("n_scored_tokens") ? get_int(j, "n_scored_tokens", file, line_no) : 0;
  r.n_history_dropped = get_int(j, "n_history_dropped", file, line_no);
  r.n_demo_dropped = get_int(j, "n_demo_dropped", file, line_no);
  r.line = std::move(line);
  return r;
}

ResultsFile read_results(const std::filesystem::path& path) {
  ResultsFile out;
  if (!std::filesystem::exists(path)) return out;
  const std::string text = read_file(path);
  std::size_t pos = 0;
  std::uint64_t line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) {  // no newline: the write was cut
      out.torn = true;
      break;
    }
    std::string line = text.substr(pos, nl - pos);
    try {
      out.records.push_back(parse_record(std::move(line), path.string(), line_no));
    } catch (const InputError&) {
      if (nl + 1 != text.size()) throw;  // only the last line may be damaged
      out.torn = true;
      break;
    }
    pos = nl + 1;
    out.good_bytes = pos;
  }
  return out;
}

Appender::Appender(const std::filesystem::path& path, std::uint64_t keep_bytes) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError("cannot open " + path.string() + ": " + errno_text());
  if (::ftruncate(fd_, static_cast<off_t>(keep_bytes)) != 0 ||
      ::lseek(fd_, static_cast<off_t>(keep_bytes), SEEK_SET) < 0) {
    const std::string e = errno_text();
    ::close(fd_);
    throw IoError("cannot truncate " + path.string() + ": " + e);
  }
}

Appender::~Appender() {
  if (fd_ >= 0) ::close(fd_);
}

void Appender::append(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("write error on " + path_.string() + ": " + errno_text());
    }
    done += static_cast<std::size_t>(n);
  }
}

void Appender::sync() {
  if (::fsync(fd_) != 0) throw IoError("fsync failed on " + path_.string() + ": " + errno_text());
}

}  // namespace lrgd::eval::detail
