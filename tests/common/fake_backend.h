// The tests' one stand-in for llm::Backend: each test gives its behaviour as hooks, and the
// bookkeeping a real backend does (usage, failures, context overflow) is done here once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lrgd/error.h"
#include "lrgd/llm.h"

namespace lrgd::test {

// What an answer hook sees of one prompt.
struct Ask {
  const llm::Prompt& prompt;
  const std::string& text;  // the last chat message, or the raw text
  const llm::GenerationParams& params;
  int call;  // the generate() call it came in, from 1
};

struct FakeBehaviour {
  std::string id = "fake:model";
  // The answer to one prompt; null: an empty one.
  std::function<llm::Generation(const Ask&)> answer;
  // {log-probability, tokens} of a continuation of a context (text); null: score() throws NotSupported.
  std::function<std::pair<double, int>(const std::string& context, const std::string& continuation)> logprob;
  // A prompt or context (text) it names fails with that message.
  std::function<std::optional<std::string>(const std::string& text)> fail;
  // Longer text fails as a context overflow, so that overflow policies can be tested.
  std::size_t max_chars = std::numeric_limits<std::size_t>::max();
  // generate() calls that succeed before every later one throws: a crash in mid-run.
  int throw_after_calls = -1;
};

// Hooks run outside the lock: CachedBackend calls its inner backend from several threads.
class FakeBackend final : public llm::Backend {
 public:
  explicit FakeBackend(FakeBehaviour b = {}) : behaviour(std::move(b)) {}

  std::vector<llm::Generation> generate(std::span<const llm::Prompt> prompts,
                                        const llm::GenerationParams& params) override {
    int call = 0;
    {
      std::lock_guard lock(mutex_);
      if (behaviour.throw_after_calls >= 0 && n_calls_ >= behaviour.throw_after_calls)
        throw std::runtime_error("scripted crash");
      call = ++n_calls_;
    }
    std::vector<llm::Generation> out;
    for (const auto& p : prompts) {
      const std::string& text = text_of(p);
      llm::Generation g;
      if (const auto failure = failure_of(text)) {
        g.finish = llm::FinishReason::Error;
        g.error = failure->first;
        g.context_overflow = failure->second;
      } else if (behaviour.answer) {
        g = behaviour.answer(Ask{p, text, params, call});
      }
      std::lock_guard lock(mutex_);
      prompts_.push_back(text);
      ++n_prompts_;
      ++usage_.n_requests;
      if (!g.ok()) ++usage_.n_failed;
      usage_.n_prompt_tokens += static_cast<std::uint64_t>(g.n_prompt_tokens);
      usage_.n_generated_tokens += static_cast<std::uint64_t>(g.n_generated_tokens);
      usage_.prompt_ms += g.prompt_ms;
      usage_.generate_ms += g.generate_ms;
      out.push_back(std::move(g));
    }
    return out;
  }

  std::vector<llm::ScoreResult> score(std::span<const llm::ScoreRequest> requests) override {
    if (!behaviour.logprob) throw NotSupported(behaviour.id + ": no scores");
    std::vector<llm::ScoreResult> out;
    for (const auto& r : requests) {
      const std::string& context = text_of(r.context);
      llm::ScoreResult s;
      if (const auto failure = failure_of(context)) {
        s.error = failure->first;
        s.context_overflow = failure->second;
      } else {
        for (const auto& c : r.continuations) {
          const auto [logprob, n_tokens] = behaviour.logprob(context, c);
          s.logprobs.push_back(logprob);
          s.n_tokens.push_back(n_tokens);
        }
      }
      std::lock_guard lock(mutex_);
      prompts_.push_back(context);
      ++n_scores_;
      ++usage_.n_requests;
      if (!s.ok()) ++usage_.n_failed;
      for (const int n : s.n_tokens) usage_.n_scored_tokens += static_cast<std::uint64_t>(n);
      out.push_back(std::move(s));
    }
    return out;
  }

  std::string model_id() const override { return behaviour.id; }
  llm::Usage usage() const override {
    std::lock_guard lock(mutex_);
    return usage_;
  }

  int n_calls() const {  // generate() calls that did not throw
    std::lock_guard lock(mutex_);
    return n_calls_;
  }
  int n_prompts() const {  // prompts generated
    std::lock_guard lock(mutex_);
    return n_prompts_;
  }
  int n_scores() const {  // score requests
    std::lock_guard lock(mutex_);
    return n_scores_;
  }
  // The text of every prompt and score context seen, in order.
  std::vector<std::string> prompts() const {
    std::lock_guard lock(mutex_);
    return prompts_;
  }
  std::string last_prompt() const {
    std::lock_guard lock(mutex_);
    return prompts_.empty() ? std::string() : prompts_.back();
  }
  void clear_prompts() {
    std::lock_guard lock(mutex_);
    prompts_.clear();
  }

  FakeBehaviour behaviour;  // change only while no call runs

 private:
  static const std::string& text_of(const llm::Prompt& p) { return p.is_chat() ? p.messages.back().content : p.text; }

  // {error, context overflow} when `text` is to fail.
  std::optional<std::pair<std::string, bool>> failure_of(const std::string& text) const {
    if (text.size() > behaviour.max_chars)
      return std::pair{"prompt of " + std::to_string(text.size()) + " chars exceeds the context", true};
    if (behaviour.fail)
      if (auto error = behaviour.fail(text)) return std::pair{std::move(*error), false};
    return std::nullopt;
  }

  mutable std::mutex mutex_;
  llm::Usage usage_;
  int n_calls_ = 0;
  int n_prompts_ = 0;
  int n_scores_ = 0;
  std::vector<std::string> prompts_;
};

}  // namespace lrgd::test
