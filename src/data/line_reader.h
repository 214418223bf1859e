// Reading plain or gzip-compressed text files: whole (read_text) or line by line (LineReader).
// A truncated or corrupt .gz throws InputError naming the file, the line and the field "gzip".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lrgd::data::detail {

// The file's bytes, decompressed when it is gzip (detected by its magic bytes).
// Throws IoError if it cannot be opened, InputError for a corrupt or truncated .gz.
std::string read_text(const std::filesystem::path& path);

class LineReader {
 public:
  // Throws IoError if the file cannot be opened.
  explicit LineReader(const std::filesystem::path& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its "\n" or "\r\n"; false at the end. The view is valid until the
  // next call. Throws InputError (field "gzip") if compressed data ends early or is corrupt.
  bool next(std::string_view& line);
  // 1-based number of the line last returned.
  std::uint64_t line_number() const { return line_; }
  const std::string& file() const { return file_; }
  std::uint64_t bytes_read() const { return total_; }

 private:
  void fill();

  std::string file_;
  void* gz_ = nullptr;  // gzFile
  std::vector<char> buf_;
  std::size_t begin_ = 0;  // unread data is buf_[begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
  std::uint64_t line_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace lrgd::data::detail
