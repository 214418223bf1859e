// Loading and preparing the Games data end to end, single-threaded, with a breakdown.
// Prints one JSON object. Usage: bench_data [DATA_DIR] [--repeat N]
//   DATA_DIR defaults to <repo>/../shared/data; figures are the median of N runs (default 7).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "line_reader.h"
#include "lrgd/data.h"
#include "lrgd/protocol.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Series {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  double median() {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  double min() { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
};

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path root = LRGD_SHARED_DATA_DIR;
  int repeat = 7;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      root = argv[i];
    }
  }
  const auto games = root / "amazon18-games";
  const auto llmrank = games / "llmrank";
  if (!std::filesystem::exists(games / "Games.inter.json")) {
    fmt::print(stderr, "bench_data: no Games data under {}\n", root.string());
    return 1;
  }
  using lrgd::data::Dataset;
  Series end_to_end, read_inter, read_items, load, hash, prepare, write, titles, load_llmrank, prepare_file,
      prepare_pop;
  std::size_t out_bytes = 0;
  for (int r = 0; r < repeat; ++r) {
    // End to end: what `lrgd data prepare` does (load, sample 1000 users, serialise).
    auto t0 = Clock::now();
    {
      const Dataset ds = lrgd::data::load_dataset(games);
      const auto split = lrgd::protocol::prepare_split(ds, lrgd::protocol::ProtocolOptions{});
      std::ostringstream os;
      lrgd::protocol::write_prepared_split(split, os);
      out_bytes = os.str().size();
    }
    end_to_end.add(ms_since(t0));

    // Breakdown.
    t0 = Clock::now();
    const std::string inter = lrgd::data::detail::read_text(games / "Games.inter.json");
    read_inter.add(ms_since(t0));
    t0 = Clock::now();
    const std::string items = lrgd::data::detail::read_text(games / "Games.item.json");
    read_items.add(ms_since(t0));

    t0 = Clock::now();
    const Dataset ds = lrgd::data::load_dataset(games);
    load.add(ms_since(t0));

    t0 = Clock::now();
    std::size_t n = 0;
    for (const auto& item : ds.items) n += lrgd::data::clean_text(item.title).size();
    titles.add(ms_since(t0));
    if (n == 0) return 2;

    t0 = Clock::now();
    const std::string h = lrgd::data::compute_content_hash(ds);
    hash.add(ms_since(t0));

    t0 = Clock::now();
    const auto split = lrgd::protocol::prepare_split(ds, lrgd::protocol::ProtocolOptions{});
    prepare.add(ms_since(t0));

    t0 = Clock::now();
    std::ostringstream os;
    lrgd::protocol::write_prepared_split(split, os);
    write.add(ms_since(t0));

    t0 = Clock::now();
    lrgd::protocol::ProtocolOptions pop;
    pop.negatives = lrgd::protocol::NegativeSampling::Popularity;
    (void)lrgd::protocol::prepare_split(ds, pop);
    prepare_pop.add(ms_since(t0));

    t0 = Clock::now();
    const Dataset lr = lrgd::data::load_dataset(llmrank);
    load_llmrank.add(ms_since(t0));

    t0 = Clock::now();
    lrgd::protocol::ProtocolOptions fixed;
    fixed.candidate_file = llmrank / "Games-6k.random";
    (void)lrgd::protocol::prepare_split(lr, fixed);
    prepare_file.add(ms_since(t0));
  }
  nlohmann::json j{{"benchmark", "data"},
                   {"data", games.string()},
                   {"repeat", repeat},
                   {"threads", 1},
                   {"unit", "ms (median of repeats)"},
                   {"end_to_end_ms", end_to_end.median()},
                   {"end_to_end_min_ms", end_to_end.min()},
                   {"output_bytes", out_bytes},
                   {"breakdown_ms",
                    {{"read_inter_json_bytes", read_inter.median()},
                     {"read_item_json_bytes", read_items.median()},
                     {"load_dataset_lcrec", load.median()},
                     {"of_which_clean_titles", titles.median()},
                     {"of_which_content_hash", hash.median()},
                     {"prepare_split_1000_uniform", prepare.median()},
                     {"write_prepared_split", write.median()}}},
                   {"other_ms",
                    {{"prepare_split_1000_popularity", prepare_pop.median()},
                     {"load_dataset_llmrank", load_llmrank.median()},
                     {"prepare_split_1000_candidate_file", prepare_file.median()}}}};
  fmt::print("{}\n", j.dump(2));
  return 0;
}
