// Content hashes recorded with every result (data, model, prompt).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lrgd {

// SHA-256 of bytes, as 64 lowercase hex characters.
std::string sha256_hex(std::string_view bytes);

// Incremental SHA-256 (for many files or streamed content).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  // Finishes and returns the hex digest; the object must not be updated afterwards.
  std::string hex();

 private:
  void* ctx_;
};

// SHA-256 of a file's bytes. Throws IoError if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace lrgd
