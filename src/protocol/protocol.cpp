// Leave-one-out split, user sampling, candidate sampling and prepare_split.
#include "lrgd/protocol.h"

#include <algorithm>
#include <stdexcept>

#include "lrgd/enum_names.h"
#include "lrgd/error.h"

namespace lrgd::protocol {

std::span<const ItemIndex> truncate_history(std::span<const ItemIndex> history, std::size_t max_history) {
  if (max_history == 0 || history.size() <= max_history) return history;
  return history.subspan(history.size() - max_history);
}

LeaveOneOut split_leave_one_out(std::span<const ItemIndex> sequence, std::size_t max_history) {
  if (sequence.size() < data::kMinUserItems) {
    throw std::invalid_argument("split_leave_one_out: a sequence needs at least 3 items");
  }
  const std::size_t n = sequence.size();
  LeaveOneOut s;
  const auto valid_h = truncate_history(sequence.first(n - 2), max_history);
  const auto test_h = truncate_history(sequence.first(n - 1), max_history);
  s.valid_history.assign(valid_h.begin(), valid_h.end());
  s.valid_target = sequence[n - 2];
  s.test_history.assign(test_h.begin(), test_h.end());
  s.test_target = sequence[n - 1];
  return s;
}

std::vector<UserIndex> sample_users(std::span<const UserIndex> eligible, std::size_t n, std::uint64_t seed) {
  std::vector<UserIndex> pool(eligible.begin(), eligible.end());
  const std::size_t take = (n == 0 || n > pool.size()) ? pool.size() : n;
  Rng rng = Rng::derive(seed, "users");
  for (std::size_t i = 0; i < take; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.uniform(pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(take);
  return pool;
}

namespace {

// "uniform" is the scheme's name before other schemes existed: old scripts and splits read.
constexpr std::array<Named<NegativeSampling>, 5> kNegatives{{{NegativeSampling::UniformUnseen, "uniform-unseen"},
                                                             {NegativeSampling::UniformAll, "uniform-all"},
                                                             {NegativeSampling::Popularity, "popularity"},
                                                             {NegativeSampling::Retrieved, "retrieved"},
                                                             {NegativeSampling::UniformUnseen, "uniform"}}};
constexpr std::array<Named<bool>, 2> kCandidatesPerTrial{{{false, "redraw"}, {true, "fixed"}}};

}  // namespace

NegativeSampling parse_negatives(std::string_view name) {
  return parse_named(kNegatives, name, "--negatives", "scheme");
}

std::string_view negatives_name(NegativeSampling negatives) { return name_of(kNegatives, negatives); }

bool parse_candidates_per_trial(std::string_view name) {
  return parse_named(kCandidatesPerTrial, name, "--candidates-per-trial", "value");
}

std::string_view candidates_per_trial_name(bool fixed_across_trials) {
  return name_of(kCandidatesPerTrial, fixed_across_trials);
}

Rng candidate_rng(std::uint64_t seed, Phase phase, UserIndex user, std::uint32_t trial) {
  const std::uint64_t index = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(user)) << 32) | trial;
  return Rng::derive(seed, phase == Phase::Valid ? "candidates/valid" : "candidates/test", index);
}

CandidateSampler::CandidateSampler(const Dataset& dataset, NegativeSampling negatives, Retriever* retriever)
    : dataset_(dataset), negatives_(negatives), retriever_(retriever), mark_(dataset.n_items(), 0) {
  if (negatives_ == NegativeSampling::Retrieved && retriever_ == nullptr)
    throw OptionError("--negatives", "retrieved needs a ranker (--retriever)");
  if (negatives_ == NegativeSampling::Popularity) {
    // Training frequency: each user's validation and test targets are not counted.
    std::vector<std::uint64_t> counts(dataset.n_items(), 0);
    for (const auto& seq : dataset.sequences) {
      const std::size_t n_train = seq.size() >= 2 ? seq.size() - 2 : 0;
      for (std::size_t k = 0; k < n_train; ++k) ++counts[static_cast<std::size_t>(seq[k])];
    }
    cumulative_.resize(counts.size());
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) cumulative_[i] = (sum += counts[i]);
  }
}

void CandidateSampler::mark_user(UserIndex user) {
  if (++epoch_ == 0) {  // wrapped: clear the marks once every 2^32 users
    std::fill(mark_.begin(), mark_.end(), 0);
    epoch_ = 1;
  }
  for (const ItemIndex i : dataset_.sequences[static_cast<std::size_t>(user)])
    mark_[static_cast<std::size_t>(i)] = epoch_;
}

std::size_t CandidateSampler::n_negatives_available(UserIndex user) const {
  const auto& s = dataset_.sequences[static_cast<std::size_t>(user)];
  // Loaders never repeat an item in a sequence; a hand-made dataset might.
  if (std::adjacent_find(s.begin(), s.end()) == s.end() && s.size() < 64) {
    bool repeated = false;
    for (std::size_t a = 0; a < s.size() && !repeated; ++a) {
      for (std::size_t b = a + 1; b < s.size(); ++b) {
        if (s[a] == s[b]) {
          repeated = true;
          break;
        }
      }
    }
    if (!repeated) return dataset_.n_items() - s.size();
  }
  std::vector<ItemIndex> seq = s;
  std::sort(seq.begin(), seq.end());
  const auto distinct = static_cast<std::size_t>(std::unique(seq.begin(), seq.end()) - seq.begin());
  return dataset_.n_items() - distinct;
}

std::vector<ItemIndex> CandidateSampler::sample(UserIndex user, ItemIndex target, std::size_t n_candidates, Rng& rng,
                                                std::span<const ItemIndex> history) {
  if (n_candidates == 0) throw std::invalid_argument("CandidateSampler::sample: n_candidates must be > 0");
  const std::size_t need = n_candidates - 1;
  if (negatives_ == NegativeSampling::UniformAll) {
    if (dataset_.n_items() < 2 && need > 0)
      throw std::invalid_argument("CandidateSampler::sample: no item besides the target");
    std::vector<ItemIndex> out;
    out.reserve(n_candidates);
    while (out.size() < need) {
      const auto i = static_cast<ItemIndex>(rng.uniform(dataset_.n_items()));
      if (i != target) out.push_back(i);
    }
    out.push_back(target);
    rng.shuffle(std::span<ItemIndex>(out));
    return out;
  }
  if (n_negatives_available(user) < need) {
    throw std::invalid_argument("CandidateSampler::sample: the user has fewer unseen items than negatives needed");
  }
  mark_user(user);
  std::vector<ItemIndex> out;
  out.reserve(n_candidates);
  const std::uint64_t n_items = dataset_.n_items();
  if (negatives_ == NegativeSampling::Retrieved) {
    std::vector<ItemIndex> pool;
    pool.reserve(n_items);
    for (std::size_t i = 0; i < n_items; ++i)
      if (!excluded(static_cast<ItemIndex>(i))) pool.push_back(static_cast<ItemIndex>(i));
    out = retriever_->top(user, history, pool, need);
    // The retriever is code, not data, but a wrong answer would silently bias every set.
    if (out.size() != need) throw std::logic_error("retriever '" + retriever_->name() + "' returned too few items");
    for (const ItemIndex i : out) {
      if (i < 0 || static_cast<std::uint64_t>(i) >= n_items || excluded(i))
        throw std::logic_error("retriever '" + retriever_->name() + "' returned an item outside the pool or twice");
      mark_[static_cast<std::size_t>(i)] = epoch_;
    }
    out.push_back(target);
    rng.shuffle(std::span<ItemIndex>(out));
    return out;
  }
  const bool popular = negatives_ == NegativeSampling::Popularity;
  const std::uint64_t total = popular && !cumulative_.empty() ? cumulative_.back() : 0;
  const std::size_t max_attempts = 64 * n_candidates + 1024;
  if (!popular || total > 0) {
    for (std::size_t attempt = 0; out.size() < need && attempt < max_attempts; ++attempt) {
      ItemIndex i;
      if (popular) {
        const std::uint64_t r = rng.uniform(total);
        i = static_cast<ItemIndex>(std::upper_bound(cumulative_.begin(), cumulative_.end(), r) - cumulative_.begin());
      } else {
        i = static_cast<ItemIndex>(rng.uniform(n_items));
      }
      if (excluded(i)) continue;
      mark_[static_cast<std::size_t>(i)] = epoch_;
      out.push_back(i);
    }
  }
  if (out.size() < need) {
    // Exact fallback: draw from the explicit list of allowed items.
    std::vector<ItemIndex> allowed;
    std::vector<std::uint64_t> weight;
    for (std::size_t i = 0; i < n_items; ++i) {
      if (excluded(static_cast<ItemIndex>(i))) continue;
      allowed.push_back(static_cast<ItemIndex>(i));
      if (popular) weight.push_back(cumulative_[i] - (i == 0 ? 0 : cumulative_[i - 1]));
    }
    while (out.size() < need) {
      std::uint64_t sum = 0;
      for (const auto w : weight) sum += w;
      std::size_t k;
      if (popular && sum > 0) {
        std::uint64_t r = rng.uniform(sum);
        k = 0;
        while (r >= weight[k]) r -= weight[k++];
      } else {
        k = static_cast<std::size_t>(rng.uniform(allowed.size()));
      }
      out.push_back(allowed[k]);
      allowed.erase(allowed.begin() + static_cast<std::ptrdiff_t>(k));
      if (popular) weight.erase(weight.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  out.push_back(target);
  rng.shuffle(std::span<ItemIndex>(out));
  return out;
}

std::vector<ItemIndex> CandidateSampler::from_fixed(UserIndex user, ItemIndex target, std::span<const ItemIndex> fixed,
                                                    std::size_t n_candidates, Rng& rng, std::size_t& n_skipped) {
  n_skipped = 0;
  if (n_candidates == 0) return {};
  const std::size_t need = n_candidates - 1;
  mark_user(user);
  std::vector<ItemIndex> out;
  out.reserve(n_candidates);
  for (const ItemIndex i : fixed) {
    if (out.size() == need) break;
    if (excluded(i)) {
      ++n_skipped;
      continue;
    }
    mark_[static_cast<std::size_t>(i)] = epoch_;
    out.push_back(i);
  }
  if (out.size() < need) return {};
  out.push_back(target);
  rng.shuffle(std::span<ItemIndex>(out));
  return out;
}

void validate(const ProtocolOptions& opts, const Dataset& dataset) {
  if (opts.n_candidates < 2)
    throw OptionError("--candidates", "a candidate set needs the target and at least one negative");
  if (opts.n_candidates > dataset.n_items()) {
    throw OptionError("--candidates", std::to_string(opts.n_candidates) + " candidates but the dataset has only " +
                                          std::to_string(dataset.n_items()) + " items");
  }
  if (opts.n_candidates > (1u << 20)) throw OptionError("--candidates", "too large");
}

PreparedSplit prepare_split(const Dataset& ds, const ProtocolOptions& opts) {
  validate(opts, ds);
  PreparedSplit split;
  split.dataset_name = ds.name;
  split.data_hash = ds.content_hash;
  split.n_users_total = ds.n_users();
  split.n_items = ds.n_items();
  split.n_interactions = ds.n_interactions();
  split.options = opts;

  CandidateSampler sampler(ds, opts.negatives, opts.retriever.get());
  if (opts.negatives == NegativeSampling::Retrieved) split.retriever_name = opts.retriever->name();
  FixedCandidates fixed;
  const bool use_file = !opts.candidate_file.empty();
  const std::string file = opts.candidate_file.string();
  if (use_file) {
    fixed = load_candidate_file(opts.candidate_file, ds, opts.strict);
    split.candidate_file_hash = fixed.file_hash;
    split.issues = fixed.issues;
  }
  // MoRE's file gives the test set itself; a TSV file lists items that fill the negatives.
  const bool verbatim = use_file && fixed.layout == FixedCandidates::Layout::More;
  std::vector<char> listed;  // --users-file: 1 for a listed user
  std::vector<UserIndex> user_list;
  if (!opts.users_file.empty()) {
    auto loaded = load_user_list(opts.users_file, ds);
    user_list = std::move(loaded.users);
    split.users_file_hash = std::move(loaded.file_hash);
    listed.assign(ds.n_users(), 0);
    for (const UserIndex u : user_list) listed[static_cast<std::size_t>(u)] = 1;
  }
  auto count = [&](const std::string& kind, const std::string& where, const std::string& detail, bool dropped) {
    for (auto& issue : split.issues) {
      if (issue.kind == kind) {
        ++issue.count;
        return;
      }
    }
    split.issues.push_back(data::LoadIssue{kind, where, 0, detail, 1, dropped});
  };

  const std::size_t need = opts.n_candidates - 1;
  std::vector<UserIndex> eligible;
  eligible.reserve(ds.n_users());
  Rng probe(0);  // from_fixed shuffles; the eligibility probe's order is discarded
  for (std::size_t u = 0; u < ds.n_users(); ++u) {
    const auto user = static_cast<UserIndex>(u);
    if (!listed.empty() && !listed[u]) continue;
    if (ds.sequences[u].size() < data::kMinUserItems) {
      if (!listed.empty()) {
        throw InputError(opts.users_file.string(), 0, "user",
                         "user '" + ds.user_ids[u] + "' has fewer than 3 items and cannot be evaluated");
      }
      count("short_user", "", "user '" + ds.user_ids[u] + "' has fewer than 3 items", true);
      continue;
    }
    if (verbatim) {
      const auto& set = fixed.by_user[u];
      if (set.empty()) {
        if (!listed.empty())
          throw InputError(file, 0, "user", "user '" + ds.user_ids[u] + "' of the user list has no candidate set");
        count("not_in_candidate_file", file,
              "users of the dataset without an entry in the candidate file (not sampled)", false);
        continue;
      }
      const ItemIndex target = ds.sequences[u].back();
      if (fixed.target_by_user[u] != data::kNoItem && fixed.target_by_user[u] != target) {
        throw InputError(file, fixed.line_by_user[u], "target_item",
                         "user '" + ds.user_ids[u] + "': the file's target '" +
                             ds.items[static_cast<std::size_t>(fixed.target_by_user[u])].id +
                             "' is not the dataset's test target '" + ds.items[static_cast<std::size_t>(target)].id +
                             "'");
      }
      if (std::count(set.begin(), set.end(), target) != 1) {
        throw InputError(file, fixed.line_by_user[u], "candidate_set",
                         "user '" + ds.user_ids[u] + "': the candidate set must contain the test target '" +
                             ds.items[static_cast<std::size_t>(target)].id + "' exactly once");
      }
      if (set.size() != opts.n_candidates) {
        throw InputError(file, fixed.line_by_user[u], "candidate_set",
                         "user '" + ds.user_ids[u] + "' has " + std::to_string(set.size()) +
                             " candidates; --candidates is " + std::to_string(opts.n_candidates));
      }
      if (opts.negatives != NegativeSampling::UniformAll && sampler.n_negatives_available(user) < need) {
        count("too_few_negatives", "",
              "user '" + ds.user_ids[u] + "' has fewer than " + std::to_string(need) +
                  " unseen items for validation candidates (not sampled)",
              true);
        continue;
      }
    } else if (use_file) {
      if (fixed.by_user[u].empty()) {
        count("not_in_candidate_file", file, "users of the dataset without a line in the candidate file (not sampled)",
              false);
        continue;
      }
      std::size_t skipped = 0;
      if (sampler.from_fixed(user, ds.sequences[u].back(), fixed.by_user[u], opts.n_candidates, probe, skipped)
              .empty()) {
        if (opts.strict) {
          throw InputError(file, 0, "candidates",
                           "user '" + ds.user_ids[u] + "' has fewer than " + std::to_string(need) +
                               " listed items they never interacted with");
        }
        count("too_few_candidates", file,
              "user '" + ds.user_ids[u] + "' lists fewer than " + std::to_string(need) +
                  " items they never interacted with (not sampled)",
              true);
        continue;
      }
    } else if (opts.negatives != NegativeSampling::UniformAll && sampler.n_negatives_available(user) < need) {
      if (!listed.empty()) {
        throw InputError(opts.users_file.string(), 0, "user",
                         "user '" + ds.user_ids[u] + "' has fewer than " + std::to_string(need) + " unseen items");
      }
      count("too_few_negatives", "",
            "user '" + ds.user_ids[u] + "' has fewer than " + std::to_string(need) + " unseen items (not sampled)",
            true);
      continue;
    }
    eligible.push_back(user);
  }
  split.n_eligible = eligible.size();

  // A user list is used as given, in its order; --users is ignored.
  const auto chosen = listed.empty() ? sample_users(eligible, opts.n_users, opts.seed) : user_list;
  if (!listed.empty() && eligible.size() != user_list.size()) {
    throw InputError(opts.users_file.string(), 0, "user",
                     std::to_string(user_list.size() - eligible.size()) + " listed users cannot be evaluated");
  }
  split.users.reserve(chosen.size());
  std::size_t n_file_skipped = 0;
  for (const UserIndex user : chosen) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(user)];
    LeaveOneOut loo = split_leave_one_out(seq, opts.max_history);
    PreparedUser pu;
    pu.user = user;
    pu.user_id = ds.user_ids[static_cast<std::size_t>(user)];
    const std::uint32_t draw = opts.fixed_across_trials ? 0 : opts.trial;
    Rng rv = candidate_rng(opts.seed, Phase::Valid, user, draw);
    Rng rt = candidate_rng(opts.seed, Phase::Test, user, draw);
    if (verbatim) {
      pu.valid_candidates = sampler.sample(user, loo.valid_target, opts.n_candidates, rv, loo.valid_history);
      pu.test_candidates = fixed.by_user[static_cast<std::size_t>(user)];
    } else if (use_file) {
      const auto& list = fixed.by_user[static_cast<std::size_t>(user)];
      std::size_t skipped = 0;
      pu.valid_candidates = sampler.from_fixed(user, loo.valid_target, list, opts.n_candidates, rv, skipped);
      pu.test_candidates = sampler.from_fixed(user, loo.test_target, list, opts.n_candidates, rt, skipped);
      n_file_skipped += skipped;
    } else {
      pu.valid_candidates = sampler.sample(user, loo.valid_target, opts.n_candidates, rv, loo.valid_history);
      pu.test_candidates = sampler.sample(user, loo.test_target, opts.n_candidates, rt, loo.test_history);
    }
    pu.valid_history = std::move(loo.valid_history);
    pu.valid_target = loo.valid_target;
    pu.test_history = std::move(loo.test_history);
    pu.test_target = loo.test_target;
    split.users.push_back(std::move(pu));
  }
  if (n_file_skipped > 0) {
    split.issues.push_back(data::LoadIssue{"candidate_interacted", file, 0,
                                           "listed candidates the user interacted with, passed over (selected users)",
                                           n_file_skipped, true});
  }
  return split;
}

}  // namespace lrgd::protocol
