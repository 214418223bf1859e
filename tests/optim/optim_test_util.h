// A fake recommender backend for the LRGD tests: its answer is a known function of the
// demonstration in the prompt, so every S(D) can be predicted.
#pragma once

#include <string>
#include <vector>

#include "../eval/eval_test_util.h"
#include "fake_backend.h"
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

// The candidate numbers (w + k) % n + 1 for k = 0..9, where w is the demonstration's window
// length and n the number of candidates: the target's rank, hence S(D), follows from
// (w, target number).
inline std::vector<int> rotating_answer(int w, int n) {
  std::vector<int> out;
  for (int k = 0; k < 10 && k < n; ++k) out.push_back((w + k) % n + 1);
  return out;
}

// Answers every prompt with rotating_answer; throws after `fail_after` generate calls (a crash).
inline FakeBackend rotating_backend(int fail_after = -1) {
  FakeBehaviour b;
  b.id = "scripted:rotating";
  b.throw_after_calls = fail_after;
  b.answer = [](const Ask& a) {
    int n = static_cast<int>(a.params.constraint.labels.size());
    if (n == 0)  // count the candidate lines
      for (auto p = a.text.find("\n["); p != std::string::npos; p = a.text.find("\n[", p + 1)) ++n;
    llm::Generation g;
    for (int c : rotating_answer(demo_window(a.text), n)) g.text += std::to_string(c) + "\n";
    g.n_prompt_tokens = static_cast<int>(a.text.size() / 4);
    g.n_generated_tokens = 20;
    return g;
  };
  return FakeBackend(std::move(b));
}

}  // namespace lrgd::test
