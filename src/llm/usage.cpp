#include <array>
#include <cstdint>
#include <functional>

#include "lrgd/enum_names.h"
#include "lrgd/llm.h"

namespace lrgd::llm {

namespace {

constexpr std::array<Named<FinishReason>, 3> kFinishReasons{
    {{FinishReason::Stop, "stop"}, {FinishReason::Length, "length"}, {FinishReason::Error, "error"}}};

}  // namespace

std::string_view finish_name(FinishReason finish) { return name_of(kFinishReasons, finish); }

bool parse_finish(std::string_view name, FinishReason& out) { return find_named(kFinishReasons, name, out); }

namespace {

// Every field of Usage, once: += and - walk the same lists, so neither can miss a new field.
constexpr std::array kCounters{
    &Usage::n_requests,      &Usage::n_failed,         &Usage::n_failed_attempts,   &Usage::n_cache_hits,
    &Usage::n_neutralised,   &Usage::n_prompt_tokens,  &Usage::n_reused_tokens,     &Usage::n_generated_tokens,
    &Usage::n_scored_tokens, &Usage::n_grammar_checks, &Usage::n_grammar_full_masks};
constexpr std::array kTimes{&Usage::prompt_ms, &Usage::generate_ms};
static_assert(sizeof(Usage) == kCounters.size() * sizeof(std::uint64_t) + kTimes.size() * sizeof(double),
              "a field of Usage is missing from kCounters or kTimes");

template <class Op>
Usage combine(Usage a, const Usage& b, Op op) {
  for (const auto field : kCounters) a.*field = op(a.*field, b.*field);
  for (const auto field : kTimes) a.*field = op(a.*field, b.*field);
  return a;
}

}  // namespace

Usage& Usage::operator+=(const Usage& o) {
  *this = combine(*this, o, std::plus<>{});
  return *this;
}

Usage Usage::operator-(const Usage& e) const { return combine(*this, e, std::minus<>{}); }

}  // namespace lrgd::llm
