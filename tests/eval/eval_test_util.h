// Helpers of the eval tests: temporary folders, a scripted backend, a tiny dataset.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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
class ScriptedBackend final : public llm::Backend {
 public:
  explicit ScriptedBackend(std::size_t max_chars = 1u << 30) : max_chars_(max_chars) {}

  std::vector<llm::Generation> generate(std::span<const llm::Prompt> prompts,
                                        const llm::GenerationParams& params) override {
    std::vector<llm::Generation> out;
    for (const auto& p : prompts) {
      ++usage_.n_requests;
      llm::Generation g;
      const std::string& text = p.messages.back().content;
      last_user_message = text;
      if (text.size() > max_chars_) {
        g.finish = llm::FinishReason::Error;
        g.error = "prompt of " + std::to_string(text.size()) + " chars exceeds the context";
        g.context_overflow = true;
        ++usage_.n_failed;
        out.push_back(g);
        continue;
      }
      const std::string h = sha256_hex(text);
      const int n = params.constraint.labels.empty() ? 50 : static_cast<int>(params.constraint.labels.size());
      for (int k = 0; k < 10; ++k) {
        const int pick = 1 + static_cast<int>(std::stoul(h.substr(static_cast<std::size_t>(k) * 4, 4), nullptr, 16) %
                                              static_cast<unsigned long>(n));
        g.text += std::to_string(pick) + "\n";
      }
      g.n_prompt_tokens = static_cast<int>(text.size() / 4);
      g.n_generated_tokens = 30;
      usage_.n_prompt_tokens += static_cast<std::uint64_t>(g.n_prompt_tokens);
      usage_.n_generated_tokens += 30;
      out.push_back(g);
    }
    return out;
  }

  std::vector<llm::ScoreResult> score(std::span<const llm::ScoreRequest> requests) override {
    std::vector<llm::ScoreResult> out;
    for (const auto& r : requests) {
      ++usage_.n_requests;
      llm::ScoreResult s;
      const std::string& ctx = r.context.messages.back().content;
      last_user_message = ctx;
      if (ctx.size() > max_chars_) {
        s.error = "context too long";
        s.context_overflow = true;
        out.push_back(s);
        continue;
      }
      for (const auto& c : r.continuations) {
        const std::string h = sha256_hex(ctx + "\x1f" + c);
        s.logprobs.push_back(-static_cast<double>(std::stoul(h.substr(0, 6), nullptr, 16)) / 1e6);
        s.n_tokens.push_back(static_cast<int>(c.size() / 4 + 1));
      }
      out.push_back(s);
    }
    return out;
  }

  std::string model_id() const override { return "scripted:v1"; }
  llm::Usage usage() const override { return usage_; }

  std::string last_user_message;

 private:
  std::size_t max_chars_;
  llm::Usage usage_;
};

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
