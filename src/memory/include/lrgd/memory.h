// The LRGD demonstration memory: every optimisation round of every (dataset, variant,
// user, path) with its demonstration, quality S and collapse bookkeeping, in a SQLite file
// (WAL; several processes may share it). Rows with `effective` (the demonstration
// recovered the validation target) are the paper's memory of effective demonstrations;
// the other rows make an interrupted optimisation resumable. `lrgd memory` inspects it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lrgd::memory {

struct Entry {
  std::string dataset;  // Dataset::name + ":" + first 12 hex of its content hash
  std::string variant;  // hash of the optimisation settings (K, rounds, P, R, generator, model, ...)
  std::string user;     // user id
  int path = 0;         // 0..K-1
  int round = 0;        // 0..R-1
  std::string text;     // the demonstration as shown (history, next item, explanation)
  std::string demo;     // JSON {"history":[item ids],"target":id,"explanation":"...","strategy":"..."}
  double score = 0;     // S(D) on the validation target
  int target_rank = 0;  // 1-based rank of the validation target, 0: absent
  bool effective = false;
  double similarity = 0;       // to this path's previous round (0 in round 0)
  bool collapsed = false;      // collapse detected after this round (next round gets P)
  int perturbation_path = -1;  // P shown with this demonstration: path and round, -1: none
  int perturbation_round = -1;
  std::string model;                     // model id of the recommender
  std::uint64_t generator_tokens = 0;    // prompt + generated tokens of stage 1 (0 for template)
  std::uint64_t recommender_tokens = 0;  // prompt + generated tokens of stage 2
};

struct Filter {
  std::string dataset;  // empty: any
  std::string variant;  // empty: any
  std::string user;     // empty: any
  bool effective_only = false;
};

class Store {
 public:
  // Opens or creates the file (parent folders too), WAL mode, busy timeout 30 s. Throws
  // IoError when it cannot be opened or has another schema.
  explicit Store(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Inserts or replaces rows (key: dataset, variant, user, path, round) in one transaction.
  void put(std::span<const Entry> entries);
  // Rows matching the filter, ordered by dataset, variant, user, path, round.
  std::vector<Entry> list(const Filter& filter = {}) const;
  // Per (dataset, variant, user): the row with the highest score, ties by earlier round,
  // then lower path. Users without a row are absent.
  std::vector<Entry> best_per_user(const Filter& filter = {}) const;
  std::size_t count(const Filter& filter = {}) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Db;
  std::filesystem::path path_;
  std::unique_ptr<Db> db_;
};

// One row as a JSON object (export format: one object per line).
std::string to_json(const Entry& entry);

}  // namespace lrgd::memory
