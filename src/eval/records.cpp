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
#include "lrgd/json_fields.h"

namespace lrgd::eval::detail {

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Record parse_record(std::string line, const std::string& file, std::uint64_t line_no) {
  namespace jf = json_fields;
  const jf::Where at{file, line_no};
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, line_no, "", std::string("not a JSON line: ") + e.what());
  }
  jf::as_object(j, at);
  // Counts are ints in Record; the int range keeps a damaged count from wrapping.
  const auto count = [&](const char* name) { return jf::get_integer<int>(j, name, at); };
  Record r;
  r.trial = jf::get_integer<std::uint32_t>(j, "trial", at, 0, INT32_MAX);
  r.draw = jf::get_integer<std::size_t>(j, "draw", at, 0, INT32_MAX);
  r.user = jf::get_string(j, "user", at);
  const auto& rank = jf::field(j, "target_rank", at);
  r.target_rank = rank.is_null() ? metrics::kNotRanked : jf::as_integer<int>(rank, "target_rank", at);
  r.valid = jf::get_bool(j, "valid", at);
  const auto* err = jf::find(j, "error");
  r.failed = err != nullptr && err->is_string() && !err->get<std::string>().empty();
  r.n_hallucinated = count("n_hallucinated");
  r.n_duplicates = count("n_duplicates");
  r.n_prompt_tokens = count("n_prompt_tokens");
  r.n_generated_tokens = count("n_generated_tokens");
  // Runs written before score-mode accounting have no such field: nothing was counted.
  r.n_scored_tokens = jf::get_integer_or<int>(j, "n_scored_tokens", at, 0);
  r.n_history_dropped = count("n_history_dropped");
  r.n_demo_dropped = count("n_demo_dropped");
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
