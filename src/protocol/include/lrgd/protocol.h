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
#include <memory>
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

// How the negatives of a candidate set are chosen (docs/eval.md, "Candidate schemes"):
//   uniform-unseen  uniform over items the user never interacted with (lrgd's default)
//   uniform-all     uniform over all items but the target, with replacement: history items
//                   and repeated negatives are allowed (MoRE's get_samples.ipynb)
//   popularity      proportional to training frequency, unseen items only (BERT4Rec, S3-Rec)
//   retrieved       the top n-1 unseen items of a named ranker (ProtocolOptions::retriever)
//                   plus the target (LLMRank's sample_candidates.py)
enum class NegativeSampling { UniformUnseen, UniformAll, Popularity, Retrieved };
// The names above ("uniform" reads as uniform-unseen); throws OptionError("--negatives").
NegativeSampling parse_negatives(std::string_view name);
std::string_view negatives_name(NegativeSampling negatives);

// Ranks a pool of items for a history, for the `retrieved` scheme. Implementations wrap a
// recommender (pop, markov, an item-token model) fitted on training parts only.
class Retriever {
 public:
  virtual ~Retriever() = default;
  // Recorded in config.json and the prepared split ("markov", "item-model:<sha256>").
  virtual std::string name() const = 0;
  // The best k items of `pool`, best first; ties broken by the pool's order (ascending index).
  virtual std::vector<ItemIndex> top(UserIndex user, std::span<const ItemIndex> history,
                                     std::span<const ItemIndex> pool, std::size_t k) = 0;
};

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
  // `retriever`: required for NegativeSampling::Retrieved, not owned, may be null otherwise.
  CandidateSampler(const Dataset& dataset, NegativeSampling negatives, Retriever* retriever = nullptr);

  // Number of items `user` never interacted with.
  std::size_t n_negatives_available(UserIndex user) const;

  // `target` plus n_candidates - 1 negatives, shuffled with `rng`. Uniform: rejection
  // sampling of uniform(n_items); popularity: rejection sampling of a draw proportional to
  // the weight. Falls back to an exact draw from the explicit list of allowed items when
  // rejections pile up. Uniform-all: n_candidates - 1 draws of uniform(n_items) that are not
  // the target. Retrieved: the retriever's top n_candidates - 1 unseen items for `history`.
  // Throws std::invalid_argument if fewer negatives exist than needed.
  std::vector<ItemIndex> sample(UserIndex user, ItemIndex target, std::size_t n_candidates, Rng& rng,
                                std::span<const ItemIndex> history = {});

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
  Retriever* retriever_ = nullptr;
  std::vector<std::uint64_t> cumulative_;  // popularity: running sum of weights
  std::vector<std::uint32_t> mark_;        // == epoch_: excluded for the current user
  std::uint32_t epoch_ = 0;
};

// A fixed candidate file resolved against a dataset's user and item ids, in one of two
// layouts (detected by the first non-blank byte):
//   `user<TAB>item item ...` per line (lrgd's TSV; LLMRank's Games-6k.random): the listed
//     items the user never interacted with, in order, fill the negatives; the target is added.
//   MoRE's JSON `{user: {"-1": {"inters": [...], "target_item": i, "candidate_set": [...]}}}`:
//     the test candidate set is used verbatim (history items and repeats included) and must
//     contain the user's test target; validation candidates come from --negatives.
struct FixedCandidates {
  enum class Layout { Tsv, More };
  Layout layout = Layout::Tsv;
  std::vector<std::vector<ItemIndex>> by_user;  // by UserIndex; empty: user absent from the file
  std::vector<std::uint64_t> line_by_user;      // where each user's entry starts (for errors)
  std::vector<ItemIndex> target_by_user;        // MoRE's target_item; kNoItem where not given
  std::string file_hash;                        // sha256 of the file's bytes
  std::vector<data::LoadIssue> issues;          // duplicate users, malformed lines
};

// Throws IoError if the file cannot be read; InputError (file, line, field) for an empty or
// malformed file, a user or item the dataset lacks, and (strict) any other skip.
FixedCandidates load_candidate_file(const std::filesystem::path& path, const Dataset& dataset, bool strict = false);

// A user-list file: a JSON array of ids or one id a line (blank lines and '#' comments
// skipped). Throws InputError naming the line for an id the dataset lacks or a repeated id.
struct UserList {
  std::vector<UserIndex> users;  // in file order
  std::string file_hash;         // sha256 of the file's bytes
};
UserList load_user_list(const std::filesystem::path& path, const Dataset& dataset);

struct ProtocolOptions {
  std::uint64_t seed = 42;
  std::uint32_t trial = 0;        // candidate draws differ per trial; users do not
  std::size_t n_users = 1000;     // 0: every eligible user
  std::size_t max_history = 20;   // 0: no truncation
  std::size_t n_candidates = 50;  // target + n_candidates - 1 negatives
  NegativeSampling negatives = NegativeSampling::UniformUnseen;
  // --candidates-per-trial fixed: every trial shows trial 0's candidates (set and order), as
  // a candidate file built once does; redraw (default): each trial draws its own.
  bool fixed_across_trials = false;
  std::shared_ptr<Retriever> retriever;  // NegativeSampling::Retrieved
  std::filesystem::path candidate_file;  // non-empty: fixed candidates instead of sampling
  std::filesystem::path users_file;      // non-empty: evaluate exactly these users, in file order
  bool strict = false;                   // candidate file: throw instead of counting skips
};

// "redraw" | "fixed"; throws OptionError("--candidates-per-trial").
bool parse_candidates_per_trial(std::string_view name);
std::string_view candidates_per_trial_name(bool fixed_across_trials);

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
  std::string users_file_hash;          // sha256 of options.users_file, when one was used
  std::string retriever_name;           // Retriever::name() for the retrieved scheme
  std::size_t n_eligible = 0;           // users the sample was drawn from
  std::vector<PreparedUser> users;      // in draw order
  std::vector<data::LoadIssue> issues;  // counted skips (not written to the file)
};

// Applies the protocol. Eligible users: every user (the loaders guarantee >= 3 items) with
// enough never-seen items for a candidate set; with a candidate file, only the users it
// lists with enough usable candidates. Users are ordered by index before sampling.
// Throws OptionError for invalid options, IoError/InputError from the candidate file.
PreparedSplit prepare_split(const Dataset& dataset, const ProtocolOptions& opts);

// Writes the test candidates of `split` (one trial) as a candidate file, with the dataset's
// own ids: "tsv" (`user<TAB>candidates in shown order`), "llmrank" (`user<TAB>negatives`,
// the target left out as in LLMRank's X.random) or "more" (MoRE's JSON, the target's
// history as "inters"). Deterministic bytes. Throws OptionError for another format name.
void write_candidate_file(const PreparedSplit& split, const Dataset& dataset, std::string_view format,
                          const std::filesystem::path& path);

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
