// The queries of the protocol's users, the target's rank in a ranking, and `evaluate`: the
// evaluation loop of run_eval without a run directory.
#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/item_model.h"

namespace lrgd::eval {

std::string_view phase_name(Phase phase) { return phase == Phase::Test ? "test" : "valid"; }

rec::Query make_query(const protocol::PreparedUser& u, std::uint32_t trial, Phase phase, DemoSource demo) {
  const bool test = phase == Phase::Test;
  rec::Query q;
  q.user = u.user;
  q.trial = trial;
  q.history = test ? u.test_history : u.valid_history;
  q.candidates = test ? u.test_candidates : u.valid_candidates;
  q.target = test ? u.test_target : u.valid_target;
  if (demo == DemoSource::ValidWindow) {
    q.demo_history = u.valid_history;
    q.demo_target = u.valid_target;
  } else if (demo == DemoSource::LastStep) {
    // The history is already truncated (protocol max_history): keep the whole window.
    auto d = item_model::last_step_demonstration(q.history, 0);
    if (d.next != data::kNoItem) {
      q.demo_history = std::move(d.history);
      q.demo_target = d.next;
    }
  }
  return q;
}

int target_rank(const rec::Query& q, const rec::Ranked& r) {
  const auto target_pos =
      static_cast<std::int32_t>(std::find(q.candidates.begin(), q.candidates.end(), q.target) - q.candidates.begin());
  const std::vector<std::int32_t> positions(r.ranking.begin(), r.ranking.end());
  return metrics::rank_of(positions, target_pos);
}

MemoryEvalResult evaluate(const data::Dataset& dataset, std::span<const NamedRanker> rankers,
                          const MemoryEvalOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.batch_size < 1) throw OptionError("--batch", "must be >= 1");
  for (const auto& r : rankers)
    if (r.ranker == nullptr) throw std::invalid_argument("eval::evaluate: ranker '" + r.name + "' is null");
  const auto split = protocol::prepare_split(dataset, options.protocol);
  const std::uint32_t trial = options.protocol.trial;

  MemoryEvalResult result;
  for (const auto& u : split.users) result.users.push_back(u.user_id);
  result.rankers.resize(rankers.size());
  for (std::size_t k = 0; k < rankers.size(); ++k) result.rankers[k].name = rankers[k].name;
  for (std::size_t b = 0; b < split.users.size(); b += options.batch_size) {
    const std::size_t e = std::min(split.users.size(), b + options.batch_size);
    std::vector<rec::Query> queries;
    queries.reserve(e - b);
    for (std::size_t i = b; i < e; ++i)
      queries.push_back(make_query(split.users[i], trial, options.phase, options.demonstration));
    for (std::size_t k = 0; k < rankers.size(); ++k) {
      auto& out = result.rankers[k];
      const auto ranked = rankers[k].ranker->rank(queries);
      for (std::size_t i = 0; i < queries.size(); ++i) {
        out.target_ranks.push_back(target_rank(queries[i], ranked[i]));
        out.n_valid += ranked[i].valid ? 1 : 0;
        if (!ranked[i].error.empty()) {
          if (out.n_failed == 0) out.first_error = "user " + split.users[b + i].user_id + ": " + ranked[i].error;
          ++out.n_failed;
        }
      }
    }
  }
  for (std::size_t k = 0; k < rankers.size(); ++k) {
    auto& out = result.rankers[k];
    // The aggregation of run_eval's summary (one trial): the mean over users, in draw order.
    out.values = metrics::compute_user_metrics(out.target_ranks, options.metrics);
    out.means = out.values.means();
    out.model_s = rankers[k].ranker->model_seconds();
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace lrgd::eval
