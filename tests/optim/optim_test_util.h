// A scripted recommender backend for the LRGD tests: its answer is a known function of the
// demonstration in the prompt, so every S(D) can be predicted.
#pragma once

#include <stdexcept>
#include <string>

#include "../eval/eval_test_util.h"
#include "lrgd/llm.h"

namespace lrgd::test {

// Number of history lines of the demonstration D in an icl prompt (0 when none).
inline int demo_window(const std::string& text) {
  const auto b = text.find("Example from this user's earlier history:");
  if (b == std::string::npos) return 0;
  const auto e = text.find("The next item the user interacted with was:", b);
  int n = 0;
  for (auto p = text.find('\n', b); p != std::string::npos && p < e; p = text.find('\n', p + 1))
    if (p + 1 < text.size() && text[p + 1] >= '1' && text[p + 1] <= '9') ++n;
  return n;
}

// The answer lists candidate numbers (w + k) % n + 1 for k = 0..9, where w is the
// demonstration's window length and n the number of candidates: the target's rank, hence
// S(D), follows from (w, target number). Throws after `fail_after` generate calls (a crash).
class RotatingBackend final : public llm::Backend {
 public:
  explicit RotatingBackend(int fail_after = -1) : fail_after_(fail_after) {}
  static std::vector<int> answer(int w, int n) {
    std::vector<int> out;
    for (int k = 0; k < 10 && k < n; ++k) out.push_back((w + k) % n + 1);
    return out;
  }
  std::vector<llm::Generation> generate(std::span<const llm::Prompt> prompts,
                                        const llm::GenerationParams& params) override {
    if (fail_after_ >= 0 && n_calls_ >= fail_after_) throw std::runtime_error("scripted crash");
    ++n_calls_;
    std::vector<llm::Generation> out;
    for (const auto& p : prompts) {
      ++usage_.n_requests;
      const std::string& text = p.messages.back().content;
      const int n =
          params.constraint.labels.empty() ? count_candidates(text) : static_cast<int>(params.constraint.labels.size());
      llm::Generation g;
      for (int c : answer(demo_window(text), n)) g.text += std::to_string(c) + "\n";
      g.n_prompt_tokens = static_cast<int>(text.size() / 4);
      g.n_generated_tokens = 20;
      usage_.n_prompt_tokens += static_cast<std::uint64_t>(g.n_prompt_tokens);
      usage_.n_generated_tokens += 20;
      out.push_back(g);
    }
    return out;
  }
  std::vector<llm::ScoreResult> score(std::span<const llm::ScoreRequest>) override {
    throw NotSupported("scripted: no scores");
  }
  std::string model_id() const override { return "scripted:rotating"; }
  llm::Usage usage() const override { return usage_; }
  int n_calls() const { return n_calls_; }

 private:
  static int count_candidates(const std::string& text) {
    int n = 0;
    for (auto p = text.find("\n["); p != std::string::npos; p = text.find("\n[", p + 1)) ++n;
    return n;
  }
  int fail_after_;
  int n_calls_ = 0;
  llm::Usage usage_;
};

}  // namespace lrgd::test
