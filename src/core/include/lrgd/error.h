// Typed exceptions of lrgd. Bad input and IO throw; tools/ catches and reports them.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace lrgd {

// Base of every lrgd exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Input that cannot be used: names the file, the 1-based line (0 if none) and the field.
class InputError : public Error {
 public:
  InputError(std::string file, std::uint64_t line, std::string field, const std::string& what);
  const std::string& file() const { return file_; }
  std::uint64_t line() const { return line_; }
  const std::string& field() const { return field_; }

 private:
  std::string file_;
  std::uint64_t line_;
  std::string field_;
};

// Invalid option or argument value given by a user (names the option).
class OptionError : public Error {
 public:
  OptionError(const std::string& option, const std::string& what);
};

// A file or device could not be read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A capability the chosen component does not have (e.g. attention capture on a server).
class NotSupported : public Error {
 public:
  using Error::Error;
};

}  // namespace lrgd
