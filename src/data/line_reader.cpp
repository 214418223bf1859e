#include "line_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "lrgd/error.h"

namespace lrgd::data::detail {

namespace {

gzFile open_gz(const std::filesystem::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw IoError("cannot open " + path.string());
  gzbuffer(f, 1 << 17);
  return f;
}

std::uint64_t count_lines(const char* data, std::size_t n) {
  return static_cast<std::uint64_t>(std::count(data, data + n, '\n'));
}

// Throws if zlib reports an error, or a truncated stream at the end.
void check_gz(gzFile f, const std::string& file, std::uint64_t line, bool at_end) {
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (err == Z_OK) return;
  if (err == Z_BUF_ERROR && !at_end) return;  // zlib: "may be more input later"
  if (err == Z_BUF_ERROR) {
    throw InputError(file, line, "gzip", "compressed data ends early (truncated .gz file)");
  }
  if (err == Z_ERRNO) throw IoError("read error on " + file + ": " + std::strerror(errno));
  throw InputError(file, line, "gzip", std::string("corrupt compressed data: ") + (msg ? msg : "unknown zlib error"));
}

}  // namespace

std::string read_text(const std::filesystem::path& path) {
  gzFile f = open_gz(path);
  std::string out;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) out.reserve(static_cast<std::size_t>(size) + 1);
  const std::string file = path.string();
  char chunk[1 << 16];
  try {
    while (true) {
      const int n = gzread(f, chunk, sizeof chunk);
      if (n < 0) check_gz(f, file, count_lines(out.data(), out.size()) + 1, true);
      if (n <= 0) break;
      out.append(chunk, static_cast<std::size_t>(n));
    }
    check_gz(f, file, count_lines(out.data(), out.size()) + 1, true);
  } catch (...) {
    gzclose(f);
    throw;
  }
  gzclose(f);
  return out;
}

LineReader::LineReader(const std::filesystem::path& path) : file_(path.string()), gz_(open_gz(path)), buf_(1 << 20) {}

LineReader::~LineReader() { gzclose(static_cast<gzFile>(gz_)); }

void LineReader::fill() {
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a line longer than the buffer
  auto f = static_cast<gzFile>(gz_);
  const auto want = static_cast<unsigned>(std::min<std::size_t>(buf_.size() - end_, 1u << 30));
  const int n = gzread(f, buf_.data() + end_, want);
  if (n < 0) check_gz(f, file_, line_ + 1, true);
  if (n <= 0) {
    check_gz(f, file_, line_ + 1, true);
    eof_ = true;
    return;
  }
  end_ += static_cast<std::size_t>(n);
  total_ += static_cast<std::uint64_t>(n);
}

bool LineReader::next(std::string_view& line) {
  std::size_t scanned = begin_;
  while (true) {
    const void* nl = std::memchr(buf_.data() + scanned, '\n', end_ - scanned);
    if (nl != nullptr) {
      const auto pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
      std::size_t len = pos - begin_;
      if (len > 0 && buf_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buf_.data() + begin_, len);
      begin_ = pos + 1;
      ++line_;
      return true;
    }
    if (eof_) {
      if (begin_ == end_) return false;
      std::size_t len = end_ - begin_;
      if (buf_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buf_.data() + begin_, len);
      begin_ = end_;
      ++line_;
      return true;
    }
    const std::size_t kept = end_ - begin_;
    fill();
    scanned = kept;  // after fill() the unread data starts at 0
  }
}

}  // namespace lrgd::data::detail
