// One open Model per GGUF path for a whole test binary, as lrgd shares one per process.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lrgd/llama_model.h"

namespace lrgd::test {

inline const llm::Model& opened(const std::filesystem::path& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const llm::Model>> open;
  std::lock_guard lock(mu);
  auto& m = open[path.string()];
  if (!m) m = llm::Model::open(path);
  return *m;
}

}  // namespace lrgd::test
