#include "builder.h"

#include <algorithm>
#include <numeric>

#include "lrgd/data.h"

namespace lrgd::data::detail {

bool parse_small_uint(std::string_view text, std::uint32_t& value) {
  if (text.empty() || text.size() > 9) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  std::uint32_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  value = v;
  return true;
}

bool id_less(std::string_view a, std::string_view b) {
  std::uint32_t va = 0;
  std::uint32_t vb = 0;
  const bool na = parse_small_uint(a, va);
  const bool nb = parse_small_uint(b, vb);
  if (na != nb) return na;
  if (na) return va < vb;
  return a < b;
}

}  // namespace lrgd::data::detail

namespace lrgd::data {

IdIndex::IdIndex(const std::vector<std::string>& ids) {
  by_number_.reserve(ids.size());
  for (std::size_t i = ids.size(); i-- > 0;) add(ids[i], static_cast<std::int32_t>(i));
}

void IdIndex::add(std::string_view id, std::int32_t index) {
  std::uint32_t v = 0;
  if (detail::parse_small_uint(id, v) && v < (1u << 26)) {
    if (by_number_.size() <= v) by_number_.resize(std::max<std::size_t>(v + 1, by_number_.size() * 2), -1);
    by_number_[v] = index;
  } else {
    by_string_.insert_or_assign(std::string(id), index);
  }
}

std::int32_t IdIndex::find(std::string_view id) const {
  std::uint32_t v = 0;
  if (detail::parse_small_uint(id, v) && v < (1u << 26)) return v < by_number_.size() ? by_number_[v] : -1;
  const auto it = by_string_.find(id);
  return it == by_string_.end() ? -1 : it->second;
}

IdIndex index_item_ids(const Dataset& dataset) {
  IdIndex index;
  for (std::size_t i = dataset.items.size(); i-- > 0;) index.add(dataset.items[i].id, static_cast<std::int32_t>(i));
  return index;
}

std::int32_t find_user(const Dataset& dataset, std::string_view id) {
  for (const auto* ids : {&dataset.user_ids, &dataset.user_alt_ids}) {
    const auto it = std::find(ids->begin(), ids->end(), id);
    if (it != ids->end()) return static_cast<std::int32_t>(it - ids->begin());
  }
  return -1;
}

}  // namespace lrgd::data

namespace lrgd::data::detail {

std::int32_t Interner::intern(std::string_view s) {
  if (last_ >= 0 && strings_[static_cast<std::size_t>(last_)] == s) return last_;
  const auto it = map_.find(s);
  if (it != map_.end()) return last_ = it->second;
  const auto index = static_cast<std::int32_t>(strings_.size());
  strings_.emplace_back(s);
  map_.emplace(strings_.back(), index);
  return last_ = index;
}

void LogBuilder::add(std::string_view user, std::string_view item, double time, std::uint32_t file,
                     std::uint64_t line) {
  records_.push_back(Record{time, line, users_.intern(user), items_.intern(item), file});
}

Dataset LogBuilder::build(const std::vector<std::string>& files, Repeats repeats, IssueLog& log) {
  const std::size_t n_users = users_.size();
  // Counting sort by user keeps the reading order inside each user.
  std::vector<std::size_t> start(n_users + 1, 0);
  for (const auto& r : records_) ++start[static_cast<std::size_t>(r.user) + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<std::uint32_t> order(records_.size());
  {
    std::vector<std::size_t> fill(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < records_.size(); ++i) {
      order[fill[static_cast<std::size_t>(records_[i].user)]++] = static_cast<std::uint32_t>(i);
    }
  }
  Dataset ds;
  ds.user_ids = users_.strings();
  ds.sequences.resize(n_users);
  std::vector<char> mark(items_.size(), 0);
  std::vector<std::size_t> repeated;
  user_lines_.assign(n_users, 0);
  for (std::size_t u = 0; u < n_users; ++u) {
    auto first = order.begin() + static_cast<std::ptrdiff_t>(start[u]);
    auto last = order.begin() + static_cast<std::ptrdiff_t>(start[u + 1]);
    // Reading order is the index order, so a stable sort on time is (time, reading order).
    std::stable_sort(first, last,
                     [this](std::uint32_t a, std::uint32_t b) { return records_[a].time < records_[b].time; });
    auto& seq = ds.sequences[u];
    seq.reserve(static_cast<std::size_t>(last - first));
    std::uint32_t first_index = UINT32_MAX;
    for (auto it = first; it != last; ++it) first_index = std::min(first_index, *it);
    if (first != last) user_lines_[u] = records_[first_index].line;
    for (auto it = first; it != last; ++it) seq.push_back(records_[*it].item);
    find_repeats(seq, repeats, mark, repeated);
    for (const std::size_t k : repeated) {
      const Record& r = records_[*(first + static_cast<std::ptrdiff_t>(k))];
      report_repeat(log, repeats, files[r.file], r.line, "item", ds.user_ids[u],
                    items_.strings()[static_cast<std::size_t>(r.item)]);
    }
    drop_repeats(seq, repeats, repeated);
  }
  ds.items.resize(items_.size());
  for (std::size_t i = 0; i < items_.size(); ++i) ds.items[i].id = items_.strings()[i];
  records_.clear();
  records_.shrink_to_fit();
  return ds;
}

void find_repeats(const std::vector<ItemIndex>& seq, Repeats mode, std::vector<char>& mark,
                  std::vector<std::size_t>& repeats) {
  repeats.clear();
  auto visit = [&](std::size_t k) {
    const auto i = static_cast<std::size_t>(seq[k]);
    if (mark.size() <= i) mark.resize(i + 1, 0);
    if (mark[i]) {
      repeats.push_back(k);
    } else {
      mark[i] = 1;
    }
  };
  if (mode == Repeats::Last) {
    for (std::size_t k = seq.size(); k-- > 0;) visit(k);
    std::reverse(repeats.begin(), repeats.end());
  } else {
    for (std::size_t k = 0; k < seq.size(); ++k) visit(k);
  }
  for (const ItemIndex i : seq) mark[static_cast<std::size_t>(i)] = 0;
}

void drop_repeats(std::vector<ItemIndex>& seq, Repeats mode, const std::vector<std::size_t>& repeats) {
  if (mode == Repeats::Keep || repeats.empty()) return;
  std::size_t out = 0;
  std::size_t r = 0;
  for (std::size_t k = 0; k < seq.size(); ++k) {
    if (r < repeats.size() && repeats[r] == k) {
      ++r;
      continue;
    }
    seq[out++] = seq[k];
  }
  seq.resize(out);
}

void report_repeat(IssueLog& log, Repeats mode, const std::string& file, std::uint64_t line, std::string_view field,
                   std::string_view user, std::string_view item) {
  const std::string what = "user '" + std::string(user) + "' has item '" + std::string(item) + "' again; ";
  if (mode == Repeats::Keep) {
    log.note("repeat_interaction", file, line, what + "every occurrence is kept (--repeats keep)");
  } else {
    log.skip(
        "duplicate_interaction", file, line, field,
        what + (mode == Repeats::First ? "the first is kept (--repeats first)" : "the last is kept (--repeats last)"));
  }
}

namespace {

// Drops items flagged in `keep == false`, compacting indices in order.
void compact_items(Dataset& ds, const std::vector<char>& keep) {
  std::vector<ItemIndex> remap(ds.items.size(), kNoItem);
  std::vector<Item> items;
  items.reserve(ds.items.size());
  for (std::size_t i = 0; i < ds.items.size(); ++i) {
    if (!keep[i]) continue;
    remap[i] = static_cast<ItemIndex>(items.size());
    items.push_back(std::move(ds.items[i]));
  }
  ds.items = std::move(items);
  for (auto& seq : ds.sequences) {
    for (auto& item : seq) item = remap[static_cast<std::size_t>(item)];
  }
}

void erase_users(Dataset& ds, const std::vector<char>& keep, std::vector<std::uint64_t>* lines) {
  if (lines != nullptr && lines->size() == keep.size()) {
    std::size_t o = 0;
    for (std::size_t u = 0; u < keep.size(); ++u) {
      if (keep[u]) (*lines)[o++] = (*lines)[u];
    }
    lines->resize(o);
  } else if (lines != nullptr) {
    lines->clear();
  }
  std::size_t out = 0;
  const bool has_alt = ds.user_alt_ids.size() == ds.user_ids.size();
  for (std::size_t u = 0; u < ds.sequences.size(); ++u) {
    if (!keep[u]) continue;
    if (out != u) {
      ds.sequences[out] = std::move(ds.sequences[u]);
      ds.user_ids[out] = std::move(ds.user_ids[u]);
      if (has_alt) ds.user_alt_ids[out] = std::move(ds.user_alt_ids[u]);
    }
    ++out;
  }
  ds.sequences.resize(out);
  ds.user_ids.resize(out);
  if (has_alt) ds.user_alt_ids.resize(out);
}

}  // namespace

void apply_kcore(Dataset& ds, int k, IssueLog& log, const std::string& file, std::vector<std::uint64_t>* user_lines) {
  if (k <= 1) return;
  const auto kk = static_cast<std::size_t>(k);
  std::vector<char> item_alive(ds.items.size(), 1);
  std::vector<char> user_alive(ds.sequences.size(), 1);
  std::vector<std::size_t> degree(ds.items.size());
  const std::size_t before = ds.n_interactions();
  std::size_t n_users_removed = 0;
  std::size_t n_items_removed = 0;
  while (true) {
    std::fill(degree.begin(), degree.end(), 0);
    for (std::size_t u = 0; u < ds.sequences.size(); ++u) {
      if (!user_alive[u]) continue;
      for (const ItemIndex i : ds.sequences[u]) ++degree[static_cast<std::size_t>(i)];
    }
    bool changed = false;
    for (std::size_t i = 0; i < degree.size(); ++i) {
      if (item_alive[i] && degree[i] < kk) {
        item_alive[i] = 0;
        ++n_items_removed;
        changed = true;
      }
    }
    for (std::size_t u = 0; u < ds.sequences.size(); ++u) {
      if (!user_alive[u]) continue;
      auto& seq = ds.sequences[u];
      std::erase_if(seq, [&](ItemIndex i) { return !item_alive[static_cast<std::size_t>(i)]; });
      if (seq.size() < kk) {
        user_alive[u] = 0;
        seq.clear();
        ++n_users_removed;
        changed = true;
      }
    }
    if (!changed) break;
  }
  erase_users(ds, user_alive, user_lines);
  compact_items(ds, item_alive);
  const std::string rule = std::to_string(k) + "-core filter";
  log.filtered("kcore_user", file, n_users_removed, "users removed by the " + rule);
  log.filtered("kcore_item", file, n_items_removed, "items removed by the " + rule);
  log.filtered("kcore_interaction", file, before - ds.n_interactions(), "interactions removed by the " + rule);
}

void remove_short_users(Dataset& ds, IssueLog& log, const std::string& file,
                        const std::vector<std::uint64_t>& user_lines) {
  std::vector<char> keep(ds.sequences.size(), 1);
  bool any = false;
  for (std::size_t u = 0; u < ds.sequences.size(); ++u) {
    if (ds.sequences[u].size() >= kMinUserItems) continue;
    keep[u] = 0;
    any = true;
    log.skip("short_user", file, u < user_lines.size() ? user_lines[u] : 0, "user",
             "user '" + ds.user_ids[u] + "' has " + std::to_string(ds.sequences[u].size()) + " item(s), fewer than " +
                 std::to_string(kMinUserItems) + " (train, validation, test)");
  }
  if (any) erase_users(ds, keep, nullptr);
}

void order_items_by_first_use(Dataset& ds) {
  const std::size_t n = ds.items.size();
  std::vector<ItemIndex> remap(n, kNoItem);
  ItemIndex next = 0;
  for (const auto& seq : ds.sequences) {
    for (const ItemIndex i : seq) {
      auto& r = remap[static_cast<std::size_t>(i)];
      if (r == kNoItem) r = next++;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (remap[i] == kNoItem) remap[i] = next++;
  }
  std::vector<Item> items(n);
  for (std::size_t i = 0; i < n; ++i) items[static_cast<std::size_t>(remap[i])] = std::move(ds.items[i]);
  ds.items = std::move(items);
  for (auto& seq : ds.sequences) {
    for (auto& i : seq) i = remap[static_cast<std::size_t>(i)];
  }
}

void finish_dataset(Dataset& ds, IssueLog& log, const std::string& items_file) {
  std::size_t n_missing = 0;
  std::string first;
  for (const auto& item : ds.items) {
    if (!item.title.empty()) continue;
    if (n_missing++ == 0) first = item.id;
  }
  if (n_missing > 0) {
    log.note("missing_title", items_file, 0,
             items_file.empty() ? "no item file: items have no text"
                                : "items without a title (first: '" + first + "'), kept without text",
             n_missing);
  }
  ds.issues = log.take();
  ds.content_hash = compute_content_hash(ds);
}

}  // namespace lrgd::data::detail
