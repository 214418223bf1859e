// The evaluation protocol (docs/method.md section 1): leave-one-out split, history
// truncation, seeded sampling of evaluation users and of candidate sets, and the prepared
// split file that later runs reuse (format in docs/formats.md).
//
// Determinism: every random choice comes from lrgd::Rng streams derived from the seed (see
// the functions below), so the same dataset, seed and options give byte-identical files on
// every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/data.h"
#include "lrgd/dataset.h"
#include "lrgd/rng.h"

namespace lrgd::protocol {

using data::Dataset;
using data::ItemIndex;
using data::UserIndex;

// The most recent `max_history` items of `history` (all of it when max_history is 0).
std::span<const ItemIndex> truncate_history(std::span<const ItemIndex> history, std::size_t max_history);

// Leave-one-out split of one chronological sequence: test target = last item, validation
// target = second to last, histories = the items before each target, truncated.
struct LeaveOneOut {
  std::vector<ItemIndex> valid_history;  // before the validation target, oldest first
  ItemIndex valid_target = data::kNoItem;
  std::vector<ItemIndex> test_history;  // before the test target (ends with the validation target)
  ItemIndex test_target = data::kNoItem;
};

// Requires sequence.size() >= 3 (data::kMinUserItems); throws std::invalid_argument otherwise.
LeaveOneOut split_leave_one_out(std::span<const ItemIndex> sequence, std::size_t max_history);

// Draws min(n, eligible.size()) users uniformly without replacement (n == 0: all of them),
// by a partial Fisher-Yates shuffle of `eligible` with Rng::derive(seed, "users"). The result
// keeps the draw order, so the first m users of a draw of n are the draw of m.
std::vector<UserIndex> sample_users(std::span<const UserIndex> eligible, std::size_t n, std::uint64_t seed);

enum class NegativeSampling { Uniform, Popularity };
// "uniform" | "popularity"; throws OptionError("--negatives") otherwise.
NegativeSampling parse_negatives(std::string_view name);
std::string_view negatives_name(NegativeSampling negatives);

enum class Phase { Valid, Test };

// The candidate stream of one user, phase and trial:
// Rng::derive(seed, "candidates/valid" or "candidates/test", (user << 32) | trial).
Rng candidate_rng(std::uint64_t seed, Phase phase, UserIndex user, std::uint32_t trial);

// Samples negatives for candidate sets: never an item of the user's sequence (history,
// validation and test targets alike), never twice in one set.
class CandidateSampler {
 public:
  // Popularity weights are interaction counts over all sequences of `dataset` (integers, so
  // draws are exact on every machine). Keeps a reference to `dataset`.
  CandidateSampler(const Dataset& dataset, NegativeSampling negatives);

  // Number of items `user` never interacted with.
  std::size_t n_negatives_available(UserIndex user) const;

  // `target` plus n_candidates - 1 negatives, shuffled with `rng`. Uniform: rejection
  // sampling of uniform(n_items); popularity: rejection sampling of a draw proportional to
  // the weight. Falls back to an exact draw from the explicit list of allowed items when
  // rejections pile up. Throws std::invalid_argument if fewer negatives exist than needed.
  std::vector<ItemIndex> sample(UserIndex user, ItemIndex target, std::size_t n_candidates, Rng& rng);

  // `target` plus the first n_candidates - 1 items of `fixed` that the user never
  // interacted with (duplicates skipped too), shuffled with `rng`. Returns an empty vector
  // if `fixed` has too few of them; `n_skipped` counts the items passed over.
  std::vector<ItemIndex> from_fixed(UserIndex user, ItemIndex target, std::span<const ItemIndex> fixed,
                                    std::size_t n_candidates, Rng& rng, std::size_t& n_skipped);

 private:
  void mark_user(UserIndex user);
  bool excluded(ItemIndex item) const { return mark_[static_cast<std::size_t>(item)] == epoch_; }

  const Dataset& dataset_;
  NegativeSampling negatives_;
  std::vector<std::uint64_t> cumulative_;  // popularity: running sum of weights
  std::vector<std::uint32_t> mark_;        // == epoch_: excluded for the current user
  std::uint32_t epoch_ = 0;
};

// A fixed candidate file (`user<TAB>item item ...`, e.g. LLMRank's Games-6k.random),
// resolved against a dataset's user and item ids.
struct FixedCandidates {
  std::vector<std::vector<ItemIndex>> by_user;  // by UserIndex; empty: user absent from the file
  std::string file_hash;                        // sha256 of the file's bytes
  std::vector<data::LoadIssue> issues;          // unknown users/items, malformed lines
};

// Throws IoError if the file cannot be read, InputError for an empty file or (strict) any skip.
FixedCandidates load_candidate_file(const std::filesystem::path& path, const Dataset& dataset, bool strict = false);

struct ProtocolOptions {
  std::uint64_t seed = 42;
  std::uint32_t trial = 0;        // candidate draws differ per trial; users do not
  std::size_t n_users = 1000;     // 0: every eligible user
  std::size_t max_history = 20;   // 0: no truncation
  std::size_t n_candidates = 50;  // target + n_candidates - 1 negatives
  NegativeSampling negatives = NegativeSampling::Uniform;
  std::filesystem::path candidate_file;  // non-empty: fixed candidates instead of sampling
  bool strict = false;                   // candidate file: throw instead of counting skips
};

// Throws OptionError naming the option for impossible values (n_candidates < 2, ...).
void validate(const ProtocolOptions& opts, const Dataset& dataset);

struct PreparedUser {
  UserIndex user = 0;
  std::string user_id;
  std::vector<ItemIndex> valid_history;
  ItemIndex valid_target = data::kNoItem;
  std::vector<ItemIndex> valid_candidates;
  std::vector<ItemIndex> test_history;
  ItemIndex test_target = data::kNoItem;
  std::vector<ItemIndex> test_candidates;
};

struct PreparedSplit {
  std::string dataset_name;
  std::string data_hash;  // Dataset::content_hash of the data it was prepared from
  std::size_t n_users_total = 0;
  std::size_t n_items = 0;
  std::size_t n_interactions = 0;
  ProtocolOptions options;
  std::string candidate_file_hash;      // sha256 of options.candidate_file, when one was used
  std::size_t n_eligible = 0;           // users the sample was drawn from
  std::vector<PreparedUser> users;      // in draw order
  std::vector<data::LoadIssue> issues;  // counted skips (not written to the file)
};

// Applies the protocol. Eligible users: every user (the loaders guarantee >= 3 items) with
// enough never-seen items for a candidate set; with a candidate file, only the users it
// lists with enough usable candidates. Users are ordered by index before sampling.
// Throws OptionError for invalid options, IoError/InputError from the candidate file.
PreparedSplit prepare_split(const Dataset& dataset, const ProtocolOptions& opts);

// JSON Lines: one header line, then one line per user (docs/formats.md). Deterministic bytes.
void write_prepared_split(const PreparedSplit& split, std::ostream& out);
// Writes to `path` through a temporary file renamed into place. Throws IoError.
void write_prepared_split(const PreparedSplit& split, const std::filesystem::path& path);

// Reads a file written by write_prepared_split. Throws IoError if unreadable, InputError
// (file, line, field) if it is not a prepared split or a value is missing or malformed.
PreparedSplit read_prepared_split(const std::filesystem::path& path);

// Throws InputError if `split` was not prepared from `dataset` (content hash or sizes differ)
// or refers to users or items outside it.
void check_prepared_split(const PreparedSplit& split, const Dataset& dataset, const std::string& file = "");

}  // namespace lrgd::protocol
