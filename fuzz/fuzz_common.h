// Shared by the fuzz targets: the input as a file, and which exceptions are the parsers'
// documented answer to bad input (anything else, or a crash, is a finding).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "lrgd/error.h"

namespace lrgd::fuzz {

// A scratch folder of this process (the fuzzer runs one input at a time).
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("lrgd-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::filesystem::path write(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const auto path = scratch() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs `f`; lrgd::Error (InputError, IoError, OptionError, ...) is a clean rejection.
template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const lrgd::Error&) {
  }
}

}  // namespace lrgd::fuzz
