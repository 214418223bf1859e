// The `retrieved` candidate scheme's ranker: any rec::Ranker scoring the pool of a user's
// unseen items, as LLMRank's sample_candidates.py retrieves with a trained recommender.
#include <map>
#include <utility>

#include "lrgd/error.h"
#include "lrgd/eval.h"

namespace lrgd::eval {

namespace {

class RankerRetriever final : public protocol::Retriever {
 public:
  RankerRetriever(std::unique_ptr<rec::Ranker> ranker, std::string name)
      : ranker_(std::move(ranker)), name_(std::move(name)) {}

  std::string name() const override { return name_; }

  std::vector<data::ItemIndex> top(data::UserIndex user, std::span<const data::ItemIndex> history,
                                   std::span<const data::ItemIndex> pool, std::size_t k) override {
    // Trials share the retrieval: only the shuffle of the set differs between them.
    auto key = std::make_pair(user, std::vector<data::ItemIndex>(history.begin(), history.end()));
    if (const auto it = cache_.find(key); it != cache_.end()) return it->second;
    rec::Query q;
    q.user = user;
    q.history = key.second;
    q.candidates.assign(pool.begin(), pool.end());
    const auto ranked = ranker_->rank(std::span<const rec::Query>(&q, 1));
    std::vector<data::ItemIndex> out;
    for (const int position : ranked.front().ranking) {
      if (out.size() == k) break;
      out.push_back(pool[static_cast<std::size_t>(position)]);
    }
    if (out.size() < k) {
      throw Error("retriever '" + name_ + "' ranked " + std::to_string(out.size()) + " of the " + std::to_string(k) +
                  " items needed" + (ranked.front().error.empty() ? "" : ": " + ranked.front().error));
    }
    cache_[std::move(key)] = out;
    return out;
  }

 private:
  std::unique_ptr<rec::Ranker> ranker_;
  std::string name_;
  std::map<std::pair<data::UserIndex, std::vector<data::ItemIndex>>, std::vector<data::ItemIndex>> cache_;
};

}  // namespace

std::shared_ptr<protocol::Retriever> make_ranker_retriever(std::unique_ptr<rec::Ranker> ranker, std::string name) {
  return std::make_shared<RankerRetriever>(std::move(ranker), std::move(name));
}

}  // namespace lrgd::eval
