// Raw Amazon Review 2018 files: reviews (one JSON object per line with reviewerID, asin,
// unixReviewTime) and metadata (asin, title, brand, category), plain or .gz.
#include "builder.h"
#include "line_reader.h"
#include "loaders.h"
#include "lrgd/error.h"

namespace lrgd::data::detail {

namespace {

void read_reviews(const std::filesystem::path& path, std::uint32_t file_no, LogBuilder& builder, IssueLog& log) {
  const std::string file = path.string();
  LineReader reader(path);
  std::string_view line;
  std::string user;
  std::string item;
  bool any = false;
  while (reader.next(line)) {
    any = true;
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      log.note("blank_line", file, reader.line_number(), "blank line ignored");
      continue;
    }
    user.clear();
    item.clear();
    double time = 0;
    bool have_user = false, have_item = false, have_time = false;
    std::string bad_field;
    JsonCursor c(line);
    try {
      c.begin_object();
      bool first = true;
      std::string_view key;
      while (c.next_member(first, key)) {
        if (key == "reviewerID" || key == "user_id") {
          if (c.peek() == '"') {
            user.assign(c.string());
            have_user = !user.empty();
          } else {
            bad_field = std::string(key);
            c.skip_value();
          }
        } else if (key == "asin" || (key == "parent_asin" && !have_item)) {
          if (c.peek() == '"') {
            item.assign(c.string());
            have_item = !item.empty();
          } else {
            bad_field = std::string(key);
            c.skip_value();
          }
        } else if (key == "unixReviewTime" || key == "timestamp") {
          const char k = c.peek();
          if (k == '-' || (k >= '0' && k <= '9')) {
            time = c.number();
            have_time = true;
          } else {
            bad_field = std::string(key);
            c.skip_value();
          }
        } else {
          c.skip_value();
        }
      }
      if (!c.at_end()) c.fail("text after the object");
    } catch (const JsonSyntaxError& e) {
      log.skip("malformed_json", file, reader.line_number(), "", describe_json_error(e, line));
      continue;
    }
    if (!have_user || !have_item || !have_time) {
      const std::string missing = !bad_field.empty() ? bad_field
                                  : !have_user       ? "reviewerID"
                                  : !have_item       ? "asin"
                                                     : "unixReviewTime";
      log.skip(bad_field.empty() ? "missing_field" : "bad_field", file, reader.line_number(), missing,
               bad_field.empty() ? "missing or empty" : "wrong type");
      continue;
    }
    builder.add(user, item, time, file_no, reader.line_number());
  }
  if (!any) throw InputError(file, 0, "", "empty file: expected one review per line");
}

void read_meta(const std::filesystem::path& path, Dataset& ds, const LoadOptions& opts, IssueLog& log) {
  const std::string file = path.string();
  ItemLookup lookup;
  for (std::size_t i = 0; i < ds.items.size(); ++i) lookup.add(ds.items[i].id, static_cast<ItemIndex>(i));
  std::vector<char> done(ds.items.size(), 0);
  LineReader reader(path);
  std::string_view line;
  std::uint64_t n_unused = 0;
  bool any = false;
  while (reader.next(line)) {
    any = true;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    Item meta;
    JsonCursor c(line);
    try {
      c.begin_object();
      bool first = true;
      std::string_view key;
      while (c.next_member(first, key)) {
        if (key == "asin") {
          meta.id = c.peek() == '"' ? std::string(c.string()) : (c.skip_value(), std::string());
        } else if (key == "title") {
          meta.title = read_text_value(c, " ", opts.title_max_chars).value_or("");
        } else if (key == "brand") {
          meta.brand = read_text_value(c, " ", opts.title_max_chars).value_or("");
        } else if (key == "category" || key == "categories") {
          meta.category = read_text_value(c, " > ", opts.title_max_chars).value_or("");
        } else {
          c.skip_value();
        }
      }
      if (!c.at_end()) c.fail("text after the object");
    } catch (const JsonSyntaxError& e) {
      log.skip("malformed_json", file, reader.line_number(), "", describe_json_error(e, line));
      continue;
    }
    if (meta.id.empty()) {
      log.skip("missing_field", file, reader.line_number(), "asin", "missing or empty");
      continue;
    }
    const ItemIndex i = lookup.find(meta.id);
    if (i == kNoItem) {
      ++n_unused;
      continue;
    }
    if (done[static_cast<std::size_t>(i)]) {
      log.skip("duplicate_item", file, reader.line_number(), "asin",
               "metadata for '" + meta.id + "' appears again; the first is kept");
      continue;
    }
    done[static_cast<std::size_t>(i)] = 1;
    Item& item = ds.items[static_cast<std::size_t>(i)];
    item.title = std::move(meta.title);
    item.brand = std::move(meta.brand);
    item.category = std::move(meta.category);
  }
  if (!any) throw InputError(file, 0, "", "empty file: expected one metadata object per line");
  log.filtered("meta_not_in_dataset", file, n_unused, "metadata lines for items that are not in the dataset");
}

}  // namespace

Dataset load_amazon_raw(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log) {
  LogBuilder builder;
  std::vector<std::string> names;
  for (const auto& f : files.interactions) {
    read_reviews(f, static_cast<std::uint32_t>(names.size()), builder, log);
    names.push_back(f.string());
  }
  Dataset ds = builder.build(names, opts.repeats, log);
  apply_kcore(ds, kcore, log, names.at(0), &builder.user_lines());
  remove_short_users(ds, log, names.at(0), builder.user_lines());
  order_items_by_first_use(ds);
  if (!files.items.empty()) read_meta(files.items, ds, opts, log);
  return ds;
}

}  // namespace lrgd::data::detail
