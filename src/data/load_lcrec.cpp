// LC-Rec JSON: X.inter.json {"user": [item, ...]}, X.item.json {"item": {"title": ...}},
// optional X.item2id / X.user2id ("source id<TAB>id" lines).
#include <algorithm>

#include "builder.h"
#include "line_reader.h"
#include "loaders.h"
#include "lrgd/error.h"

namespace lrgd::data::detail {

namespace {

struct RawItem {
  std::string id;
  Item item;
  std::uint64_t line;
};

// A title, brand or category: a string or an array of strings (joined with ", "); any other
// value leaves `out` as it was.
void read_text_field(JsonCursor& c, std::string& out, std::size_t max_chars) {
  if (auto text = read_text_value(c, ", ", max_chars)) out = std::move(*text);
}

std::vector<RawItem> read_items(const std::string& file, const LoadOptions& opts, IssueLog& log) {
  const std::string text = read_text(file);
  std::vector<RawItem> items;
  std::string field = "(top level)";
  JsonCursor c(text);
  LineCounter lines(text);
  try {
    if (c.at_end()) throw InputError(file, 1, "", "empty file: expected a JSON object of items");
    c.begin_object();
    bool first = true;
    std::string_view key;
    while (c.next_member(first, key)) {
      RawItem raw;
      raw.id.assign(key);
      raw.item.id = raw.id;
      const std::size_t at = c.offset();
      field = raw.id;
      if (c.peek() == '"') {  // {"id": "title"} is accepted too
        raw.item.title = clean_text(c.string(), opts.title_max_chars);
      } else if (c.peek() == '{') {
        c.begin_object();
        bool first_field = true;
        std::string_view name;
        while (c.next_member(first_field, name)) {
          field = raw.id + "." + std::string(name);
          if (name == "title") {
            read_text_field(c, raw.item.title, opts.title_max_chars);
          } else if (name == "brand") {
            read_text_field(c, raw.item.brand, opts.title_max_chars);
          } else if (name == "categories" || name == "category") {
            read_text_field(c, raw.item.category, opts.title_max_chars);
          } else {
            c.skip_value();
          }
        }
      } else {
        c.skip_value();
        log.skip("bad_item", file, lines.line_at(at), raw.id, "expected an object or a title string");
        continue;
      }
      raw.line = lines.line_at(at);
      items.push_back(std::move(raw));
    }
    field = "(top level)";
    if (!c.at_end()) c.fail("text after the top-level object");
  } catch (const JsonSyntaxError& e) {
    throw_json_error(e, text, file, 1, field);
  }
  return items;
}

}  // namespace

Dataset load_lcrec(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log) {
  Dataset ds;
  ItemLookup lookup;
  const bool have_items = !files.items.empty();
  const std::string inter_file = files.interactions.at(0).string();
  if (have_items) {
    const std::string item_file = files.items.string();
    auto raw = read_items(item_file, opts, log);
    const auto by_id = [](const RawItem& a, const RawItem& b) { return id_less(a.id, b.id); };
    if (!std::is_sorted(raw.begin(), raw.end(), by_id)) std::stable_sort(raw.begin(), raw.end(), by_id);
    ds.items.reserve(raw.size());
    for (auto& r : raw) {
      if (!ds.items.empty() && ds.items.back().id == r.id) {
        log.skip("duplicate_item", item_file, r.line, r.id, "item '" + r.id + "' appears again; the first is kept");
        continue;
      }
      lookup.add(r.id, static_cast<ItemIndex>(ds.items.size()));
      ds.items.push_back(std::move(r.item));
    }
  }

  // Interactions.
  const std::string text = read_text(inter_file);
  Interner new_items;  // item ids met in the sequences when there is no item file
  struct RawUser {
    std::string id;
    std::vector<ItemIndex> seq;
    std::uint64_t line;
  };
  std::vector<RawUser> users;
  std::string field = "(top level)";
  JsonCursor c(text);
  LineCounter lines(text);
  try {
    if (c.at_end()) throw InputError(inter_file, 1, "", "empty file: expected a JSON object of user sequences");
    c.begin_object();
    bool first = true;
    std::string_view key;
    std::vector<char> mark(ds.items.size(), 0);
    std::vector<std::size_t> repeated;
    std::vector<std::size_t> el_offsets;  // the text offset and array position of each item of u.seq
    std::vector<std::size_t> el_pos;
    while (c.next_member(first, key)) {
      RawUser u;
      u.id.assign(key);
      field = u.id;
      const std::size_t at = c.offset();
      u.line = lines.line_at(at);
      if (c.peek() != '[') {
        c.skip_value();
        log.skip("bad_user", inter_file, u.line, u.id, "expected an array of item ids");
        continue;
      }
      c.begin_array();
      bool first_el = true;
      std::size_t pos = 0;
      while (c.next_element(first_el)) {
        const std::size_t el_at = c.offset();
        const std::string_view token = c.scalar_text();
        ItemIndex item = kNoItem;
        if (have_items) {
          item = lookup.find(token);
          if (item == kNoItem) {
            log.skip("unknown_item", inter_file, lines.line_at(el_at), u.id + "[" + std::to_string(pos) + "]",
                     "item '" + std::string(token) + "' is not in " + files.items.filename().string());
            ++pos;
            continue;
          }
        } else {
          item = new_items.intern(token);
        }
        u.seq.push_back(item);
        el_offsets.push_back(el_at);
        el_pos.push_back(pos);
        ++pos;
      }
      find_repeats(u.seq, opts.repeats, mark, repeated);
      for (const std::size_t k : repeated) {
        const auto i = static_cast<std::size_t>(u.seq[k]);
        report_repeat(log, opts.repeats, inter_file, lines.line_at(el_offsets[k]),
                      u.id + "[" + std::to_string(el_pos[k]) + "]", u.id,
                      have_items ? std::string_view(ds.items[i].id) : std::string_view(new_items.strings()[i]));
      }
      drop_repeats(u.seq, opts.repeats, repeated);
      el_offsets.clear();
      el_pos.clear();
      users.push_back(std::move(u));
    }
    field = "(top level)";
    if (!c.at_end()) c.fail("text after the top-level object");
  } catch (const JsonSyntaxError& e) {
    throw_json_error(e, text, inter_file, 1, field);
  }

  if (!have_items) {
    // Items are the ids met in the sequences, in id order.
    const auto& ids = new_items.strings();
    std::vector<std::int32_t> order(ids.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return id_less(ids[static_cast<std::size_t>(a)], ids[static_cast<std::size_t>(b)]);
    });
    std::vector<ItemIndex> remap(ids.size());
    ds.items.resize(ids.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      remap[static_cast<std::size_t>(order[k])] = static_cast<ItemIndex>(k);
      ds.items[k].id = ids[static_cast<std::size_t>(order[k])];
    }
    for (auto& u : users) {
      for (auto& i : u.seq) i = remap[static_cast<std::size_t>(i)];
    }
  }

  const auto by_id = [](const RawUser& a, const RawUser& b) { return id_less(a.id, b.id); };
  if (!std::is_sorted(users.begin(), users.end(), by_id)) std::stable_sort(users.begin(), users.end(), by_id);
  std::vector<std::uint64_t> user_lines;
  user_lines.reserve(users.size());
  ds.sequences.reserve(users.size());
  ds.user_ids.reserve(users.size());
  for (auto& u : users) {
    if (!ds.user_ids.empty() && ds.user_ids.back() == u.id) {
      log.skip("duplicate_user", inter_file, u.line, u.id, "user '" + u.id + "' appears again; the first is kept");
      continue;
    }
    ds.user_ids.push_back(std::move(u.id));
    ds.sequences.push_back(std::move(u.seq));
    user_lines.push_back(u.line);
  }
  users.clear();

  // Source ids (ASIN, reviewerID) from item2id / user2id.
  auto read_map = [&](const std::filesystem::path& path, bool items_side) {
    if (path.empty()) return;
    const std::string file = path.string();
    ItemLookup user_lookup;
    if (!items_side) {
      for (std::size_t u = 0; u < ds.user_ids.size(); ++u) user_lookup.add(ds.user_ids[u], static_cast<ItemIndex>(u));
      ds.user_alt_ids.assign(ds.user_ids.size(), std::string());
    }
    const ItemLookup& ids = items_side ? lookup : user_lookup;
    LineReader reader(path);
    std::string_view line;
    while (reader.next(line)) {
      const auto tab = line.find('\t');
      if (tab == std::string_view::npos) {
        log.skip("malformed_line", file, reader.line_number(), "", "expected 'source id<TAB>id'");
        continue;
      }
      const std::string_view id = line.substr(tab + 1);
      const ItemIndex index = ids.find(id);
      if (index == kNoItem) {
        // Ids of items or users that the other files do not have (e.g. removed) are kept out.
        log.note(items_side ? "item2id_unused" : "user2id_unused", file, reader.line_number(),
                 "id '" + std::string(id) + "' is not in the dataset");
        continue;
      }
      auto& target = items_side ? ds.items[static_cast<std::size_t>(index)].alt_id
                                : ds.user_alt_ids[static_cast<std::size_t>(index)];
      target.assign(line.substr(0, tab));
    }
  };
  if (!have_items) {
    for (std::size_t i = 0; i < ds.items.size(); ++i) lookup.add(ds.items[i].id, static_cast<ItemIndex>(i));
  }
  read_map(files.item2id, true);
  read_map(files.user2id, false);

  apply_kcore(ds, kcore, log, inter_file, &user_lines);
  remove_short_users(ds, log, inter_file, user_lines);
  return ds;
}

}  // namespace lrgd::data::detail
