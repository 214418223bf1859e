// Rankings made by another tool (RecBole's SASRec, a Python script) for lrgd's own queries:
// a score file, per (user, trial), orders that query's candidates; `lrgd eval --method
// external --scores FILE` reports it like any other method. Formats: docs/formats.md
// ("Score files"). Every problem is an InputError naming the file and line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lrgd/dataset.h"
#include "lrgd/rec.h"

namespace lrgd::external {

using data::ItemIndex;
using data::UserIndex;

// What one (user, trial) of a score file says.
struct Entry {
  UserIndex user = 0;
  std::uint32_t trial = 0;
  std::uint64_t line = 0;  // the first line of the file about this (user, trial)
  bool is_ranking = false;
  std::vector<ItemIndex> ranking;                    // ranking form: best first, as listed
  std::vector<std::pair<ItemIndex, double>> scores;  // scores form: finite, higher is better
  std::vector<std::uint64_t> score_lines;            // TSV: the line of each score (else `line`)
};

struct ScoreFile {
  std::string path;    // as given
  std::string sha256;  // of the file's bytes
  std::string format;  // "jsonl" | "tsv"
  std::map<std::pair<UserIndex, std::uint32_t>, Entry> entries;
};

// Reads a score file (JSON Lines or TSV, detected by its first non-blank character) and
// resolves its user and item ids against `dataset` (users by find_user, items by Item::id).
// Throws InputError(path, line, field) for a truncated file (no final line end), malformed
// lines, unknown ids, a non-finite score, a repeated item in a ranking, a repeated (user,
// trial) line (JSON Lines) or (user, trial, item) line (TSV); IoError when it cannot be read.
ScoreFile read_score_file(const std::filesystem::path& path, const data::Dataset& dataset);

// The 0-based candidate positions of `query`, best first, cut to `list_length`: the entry's
// ranking, or its candidates by score, ties by position in query.candidates (the protocol's
// shuffled order, as the baselines and the LLM score mode break them). Throws InputError when
// the file has no entry for the query's (user, trial), or the entry's items are not exactly
// the query's candidates (naming the missing ones, or the first one that is not a candidate).
std::vector<int> order_candidates(const ScoreFile& file, const rec::Query& query, const data::Dataset& dataset,
                                  int list_length);

// A ranker that answers every query from `rankings`, keyed by (user, trial) (each checked
// beforehand with order_candidates). A query without one is a programmer error
// (std::invalid_argument).
std::unique_ptr<rec::Ranker> make_external_ranker(
    std::map<std::pair<UserIndex, std::uint32_t>, std::vector<int>> rankings);

}  // namespace lrgd::external
