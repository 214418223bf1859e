// Helpers of the eval tests: temporary folders, a hash-answering fake backend, a tiny dataset.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fake_backend.h"
#include "lrgd/dataset.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/llm.h"
#include "temp_dir.h"

namespace lrgd::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Answers with candidate numbers derived from the prompt's hash (deterministic), fails with
// a context overflow when the user message is longer than `max_chars`, scores a
// continuation by a hash of (context, continuation).
inline FakeBackend hashed_answers_backend(std::size_t max_chars = 1u << 30) {
  FakeBehaviour b;
  b.id = "scripted:v1";
  b.max_chars = max_chars;
  b.answer = [](const Ask& a) {
    llm::Generation g;
    const std::string h = sha256_hex(a.text);
    const int n = a.params.constraint.labels.empty() ? 50 : static_cast<int>(a.params.constraint.labels.size());
    for (int k = 0; k < 10; ++k) {
      const int pick = 1 + static_cast<int>(std::stoul(h.substr(static_cast<std::size_t>(k) * 4, 4), nullptr, 16) %
                                            static_cast<unsigned long>(n));
      g.text += std::to_string(pick) + "\n";
    }
    g.n_prompt_tokens = static_cast<int>(a.text.size() / 4);
    g.n_generated_tokens = 30;
    return g;
  };
  b.logprob = [](const std::string& context, const std::string& c) {
    const std::string h = sha256_hex(context + "\x1f" + c);
    return std::pair{-static_cast<double>(std::stoul(h.substr(0, 6), nullptr, 16)) / 1e6,
                     static_cast<int>(c.size() / 4 + 1)};
  };
  return FakeBackend(std::move(b));
}

// A dataset of n_users users with 8 items each over 80 items titled "Game <i>".
inline data::Dataset tiny_dataset(int n_users = 30) {
  data::Dataset ds;
  ds.name = "Tiny";
  ds.format = "test";
  for (int i = 0; i < 80; ++i) ds.items.push_back({std::to_string(i), "Game " + std::to_string(i), "", "", ""});
  for (int u = 0; u < n_users; ++u) {
    ds.user_ids.push_back("u" + std::to_string(u));
    std::vector<data::ItemIndex> seq;
    for (int k = 0; k < 8; ++k) seq.push_back((u * 7 + k * 3) % 80);
    ds.sequences.push_back(seq);
  }
  ds.content_hash = "tiny";
  return ds;
}

}  // namespace lrgd::test
