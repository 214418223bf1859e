// Format detection and load_dataset.
#include <algorithm>

#include "builder.h"
#include "line_reader.h"
#include "loaders.h"
#include "lrgd/error.h"

namespace lrgd::data {

namespace fs = std::filesystem;

namespace detail {

[[noreturn]] void throw_json_error(const JsonSyntaxError& e, std::string_view text, const std::string& file,
                                   std::uint64_t first_line, const std::string& field) {
  const TextPosition pos = text_position(text, e.offset);
  throw InputError(file, first_line + pos.line - 1, field,
                   "malformed JSON: " + e.message + " (column " + std::to_string(pos.column) + ")");
}

std::string describe_json_error(const JsonSyntaxError& e, std::string_view line) {
  return "malformed JSON: " + e.message + " (column " + std::to_string(text_position(line, e.offset).column) + ")";
}

std::optional<std::string> read_text_value(JsonCursor& c, std::string_view sep, std::size_t max_chars) {
  const char k = c.peek();
  if (k == '"') return clean_text(c.string(), max_chars);
  if (k != '[') {
    c.skip_value();
    return std::nullopt;
  }
  c.begin_array();
  bool first = true;
  std::string joined;
  while (c.next_element(first)) {
    if (c.peek() != '"') {
      c.skip_value();
      continue;
    }
    const std::string part = clean_text(c.string());
    if (part.empty()) continue;
    if (!joined.empty()) joined += sep;
    joined += part;
  }
  return clean_text(joined, max_chars);
}

}  // namespace detail

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_suffix(const std::string& s, std::string_view suffix) {
  return s.substr(0, s.size() - suffix.size());
}

std::vector<fs::path> list_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) out.push_back(entry.path());
  }
  if (ec) throw IoError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string names_of(const std::vector<fs::path>& files) {
  std::string s;
  for (const auto& f : files) s += (s.empty() ? "" : ", ") + f.filename().string();
  return s;
}

bool is_lcrec_inter(const std::string& n) { return ends_with(n, ".inter.json") || ends_with(n, ".inter.json.gz"); }
bool is_recbole(const std::string& n) { return ends_with(n, ".inter") || ends_with(n, ".item"); }
bool is_csv(const std::string& n) {
  return ends_with(n, ".csv") || ends_with(n, ".tsv") || ends_with(n, ".csv.gz") || ends_with(n, ".tsv.gz");
}
bool is_raw_json(const std::string& n) {
  if (is_lcrec_inter(n) || ends_with(n, ".item.json") || ends_with(n, ".item.json.gz")) return false;
  return ends_with(n, ".json") || ends_with(n, ".json.gz") || ends_with(n, ".jsonl") || ends_with(n, ".jsonl.gz");
}

// "Video_Games_5.json.gz" -> "Video_Games_5"
std::string raw_stem(const std::string& name) {
  for (const std::string_view suffix : {".json.gz", ".jsonl.gz", ".json", ".jsonl"}) {
    if (ends_with(name, suffix)) return strip_suffix(name, suffix);
  }
  return name;
}

fs::path sibling_if_exists(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  const fs::path p = dir / name;
  return fs::is_regular_file(p, ec) ? p : fs::path();
}

DetectedFiles detect_lcrec(const fs::path& inter) {
  DetectedFiles d;
  d.format = Format::LcRec;
  const std::string n = inter.filename().string();
  d.name = ends_with(n, ".gz") ? strip_suffix(n, ".inter.json.gz") : strip_suffix(n, ".inter.json");
  d.interactions = {inter};
  const fs::path dir = inter.parent_path();
  d.items = sibling_if_exists(dir, d.name + ".item.json");
  if (d.items.empty()) d.items = sibling_if_exists(dir, d.name + ".item.json.gz");
  d.item2id = sibling_if_exists(dir, d.name + ".item2id");
  d.user2id = sibling_if_exists(dir, d.name + ".user2id");
  return d;
}

DetectedFiles detect_recbole(const fs::path& dir, const fs::path& given) {
  DetectedFiles d;
  d.format = Format::RecBole;
  const auto files = list_files(dir);
  std::vector<fs::path> items, valid, test, plain;
  for (const auto& f : files) {
    const std::string n = f.filename().string();
    if (ends_with(n, ".item")) {
      items.push_back(f);
    } else if (ends_with(n, ".valid.inter")) {
      valid.push_back(f);
    } else if (ends_with(n, ".test.inter")) {
      test.push_back(f);
    } else if (ends_with(n, ".inter") && !ends_with(n, ".train.inter")) {
      plain.push_back(f);
    }
  }
  std::vector<fs::path> all_inters = valid;
  all_inters.insert(all_inters.end(), test.begin(), test.end());
  all_inters.insert(all_inters.end(), plain.begin(), plain.end());
  const std::string given_name = given.empty() ? "" : given.filename().string();
  if (!given.empty() && ends_with(given_name, ".inter")) {
    // The named interaction file, with its partner for the other phase.
    if (ends_with(given_name, ".valid.inter") || ends_with(given_name, ".test.inter")) {
      const std::string stem = ends_with(given_name, ".valid.inter") ? strip_suffix(given_name, ".valid.inter")
                                                                     : strip_suffix(given_name, ".test.inter");
      const fs::path v = sibling_if_exists(dir, stem + ".valid.inter");
      const fs::path t = sibling_if_exists(dir, stem + ".test.inter");
      if (!v.empty()) d.interactions.push_back(v);
      if (!t.empty()) d.interactions.push_back(t);
    } else {
      d.interactions = {given};
    }
  } else if (valid.size() == 1 && test.size() == 1) {
    d.interactions = {valid[0], test[0]};
  } else if (valid.empty() && test.size() == 1) {
    d.interactions = {test[0]};
  } else if (valid.empty() && test.empty() && plain.size() == 1) {
    d.interactions = {plain[0]};
  } else if (valid.size() + test.size() + plain.size() == 0) {
    throw InputError(dir.string(), 0, "", "RecBole format: no .inter file");
  } else {
    throw InputError(dir.string(), 0, "",
                     "RecBole format: several datasets here (" + names_of(all_inters) + "); name one .inter file");
  }
  if (!given.empty() && ends_with(given_name, ".item")) {
    d.items = given;
  } else if (items.size() == 1) {
    d.items = items[0];
  } else {
    // The item file whose stem starts the interaction file's name (Games.item, Games-6k.test.inter).
    const std::string inter_name = d.interactions[0].filename().string();
    for (const auto& f : items) {
      const std::string stem = strip_suffix(f.filename().string(), ".item");
      if (inter_name.rfind(stem, 0) == 0 && (d.items.empty() || stem.size() > d.items.stem().string().size())) {
        d.items = f;
      }
    }
  }
  // UniSRec: X.text (item text by source id), X.item2index and X.user2index, where X starts
  // the interaction file's name.
  const std::string inter_name = d.interactions[0].filename().string();
  auto by_stem = [&](std::string_view suffix) {
    fs::path best;
    std::size_t best_len = 0;
    for (const auto& f : files) {
      const std::string n = f.filename().string();
      if (!ends_with(n, suffix)) continue;
      const std::string stem = strip_suffix(n, suffix);
      if (!stem.empty() && inter_name.rfind(stem, 0) == 0 && stem.size() > best_len) {
        best = f;
        best_len = stem.size();
      }
    }
    return best;
  };
  d.item2id = by_stem(".item2index");
  d.user2id = by_stem(".user2index");
  if (d.items.empty()) d.items = by_stem(".text");
  if (!d.items.empty()) {
    d.name = d.items.stem().string();
  } else {
    const std::string n = d.interactions[0].filename().string();
    d.name = n.substr(0, n.find('.'));
  }
  return d;
}

DetectedFiles detect_raw(const fs::path& dir, const fs::path& given) {
  DetectedFiles d;
  d.format = Format::AmazonRaw;
  std::vector<fs::path> reviews, metas;
  for (const auto& f : list_files(dir)) {
    const std::string n = f.filename().string();
    if (!is_raw_json(n)) continue;
    (n.rfind("meta_", 0) == 0 ? metas : reviews).push_back(f);
  }
  if (!given.empty()) {
    const std::string n = given.filename().string();
    if (n.rfind("meta_", 0) == 0) {
      throw InputError(given.string(), 0, "", "this is an Amazon metadata file; name the review file instead");
    }
    reviews = {given};
  }
  if (reviews.empty()) throw InputError(dir.string(), 0, "", "Amazon raw format: no review file (*.json, *.json.gz)");
  if (reviews.size() > 1) {
    throw InputError(dir.string(), 0, "",
                     "Amazon raw format: several review files (" + names_of(reviews) + "); name one");
  }
  d.interactions = reviews;
  d.name = raw_stem(reviews[0].filename().string());
  // meta_<name>, or meta_<name without a trailing _5> (Video_Games_5.json.gz -> meta_Video_Games.json.gz).
  std::vector<std::string> stems{d.name};
  if (d.name.size() > 2 && ends_with(d.name, "_5")) stems.push_back(strip_suffix(d.name, "_5"));
  for (const auto& stem : stems) {
    for (const auto& m : metas) {
      if (d.items.empty() && raw_stem(m.filename().string()) == "meta_" + stem) d.items = m;
    }
  }
  if (d.items.empty() && metas.size() == 1) d.items = metas[0];
  return d;
}

// The column names of a CSV/TSV header line, lower case, without RecBole ":type" suffixes.
bool csv_header_has_title(const fs::path& file) {
  detail::LineReader reader(file);
  std::string_view line;
  if (!reader.next(line)) return false;
  std::string lower(line);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return lower.find("title") != std::string::npos;
}

DetectedFiles detect_csv(const fs::path& dir, const fs::path& given, const fs::path& items_file) {
  DetectedFiles d;
  d.format = Format::Csv;
  std::vector<fs::path> inters, items;
  for (const auto& f : list_files(dir)) {
    if (!is_csv(f.filename().string())) continue;
    (csv_header_has_title(f) ? items : inters).push_back(f);
  }
  if (!given.empty()) inters = {given};
  if (inters.empty()) throw InputError(dir.string(), 0, "", "CSV format: no interaction file (*.csv, *.tsv)");
  if (inters.size() > 1) {
    throw InputError(dir.string(), 0, "", "CSV format: several interaction files (" + names_of(inters) + "); name one");
  }
  d.interactions = inters;
  if (!items_file.empty()) {
    d.items = items_file;
  } else if (items.size() == 1) {
    d.items = items[0];
  } else if (items.size() > 1) {
    throw InputError(dir.string(), 0, "", "CSV format: several item files (" + names_of(items) + "); use --items");
  }
  d.name = given.empty() ? fs::absolute(dir).filename().string() : given.stem().string();
  if (d.name.empty() || d.name == ".") d.name = "dataset";
  return d;
}

}  // namespace

DetectedFiles detect_files(const fs::path& path, Format format) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError("no such file or directory: " + path.string());
  const bool is_dir = fs::is_directory(path, ec);
  const fs::path dir = is_dir ? path : (path.has_parent_path() ? path.parent_path() : fs::path("."));
  const fs::path given = is_dir ? fs::path() : path;
  const std::string name = given.filename().string();

  if (format == Format::Auto) {
    if (!is_dir) {
      if (is_lcrec_inter(name)) return detect_lcrec(path);
      if (ends_with(name, ".item.json")) {
        const fs::path inter = sibling_if_exists(dir, strip_suffix(name, ".item.json") + ".inter.json");
        if (!inter.empty()) return detect_lcrec(inter);
      }
      if (is_recbole(name)) return detect_recbole(dir, given);
      if (is_csv(name)) return detect_csv(dir, given, {});
      if (is_raw_json(name)) return detect_raw(dir, given);
      throw InputError(path.string(), 0, "", "cannot tell the format from the file name; use --format");
    }
    const auto files = list_files(dir);
    std::vector<fs::path> lcrec;
    bool recbole = false, csv = false, raw = false;
    for (const auto& f : files) {
      const std::string n = f.filename().string();
      if (is_lcrec_inter(n)) lcrec.push_back(f);
      recbole = recbole || is_recbole(n);
      csv = csv || is_csv(n);
      raw = raw || is_raw_json(n);
    }
    if (lcrec.size() == 1) return detect_lcrec(lcrec[0]);
    if (lcrec.size() > 1) {
      throw InputError(dir.string(), 0, "", "LC-Rec format: several datasets (" + names_of(lcrec) + "); name one");
    }
    if (recbole) return detect_recbole(dir, {});
    if (csv) return detect_csv(dir, {}, {});
    if (raw) return detect_raw(dir, {});
    throw InputError(dir.string(), 0, "",
                     "no dataset found: expected X.inter.json (LC-Rec), .inter/.item (RecBole), .csv/.tsv, or Amazon "
                     "review .json/.json.gz files");
  }

  switch (format) {
    case Format::LcRec: {
      if (!is_dir) return detect_lcrec(path);
      std::vector<fs::path> lcrec;
      for (const auto& f : list_files(dir)) {
        if (is_lcrec_inter(f.filename().string())) lcrec.push_back(f);
      }
      if (lcrec.size() != 1) {
        throw OptionError("--format", "lcrec: expected one X.inter.json in " + dir.string() + ", found " +
                                          std::to_string(lcrec.size()));
      }
      return detect_lcrec(lcrec[0]);
    }
    case Format::RecBole:
      return detect_recbole(dir, given);
    case Format::AmazonRaw:
      return detect_raw(dir, given);
    case Format::Csv:
      return detect_csv(dir, given, {});
    case Format::Auto:
      break;
  }
  throw OptionError("--format", "unknown format");
}

Dataset load_dataset(const fs::path& path, const LoadOptions& opts) {
  DetectedFiles files = detect_files(path, opts.format);
  if (files.format == Format::Csv && !opts.items_file.empty()) files.items = opts.items_file;
  int kcore = opts.kcore;
  if (kcore < 0) kcore = (files.format == Format::AmazonRaw || files.format == Format::Csv) ? 5 : 0;
  detail::IssueLog log(opts.strict);
  Dataset ds;
  switch (files.format) {
    case Format::LcRec:
      ds = detail::load_lcrec(files, opts, kcore, log);
      break;
    case Format::RecBole:
      ds = detail::load_recbole(files, opts, kcore, log);
      break;
    case Format::AmazonRaw:
      ds = detail::load_amazon_raw(files, opts, kcore, log);
      break;
    case Format::Csv:
      ds = detail::load_csv(files, opts, kcore, log);
      break;
    case Format::Auto:
      throw OptionError("--format", "no format detected");
  }
  const std::string first_file = files.interactions.empty() ? path.string() : files.interactions[0].string();
  if (ds.sequences.empty()) {
    std::string counts;
    for (const auto& issue : log.take()) {
      counts += (counts.empty() ? "" : ", ") + issue.kind + " " + std::to_string(issue.count);
    }
    throw InputError(first_file, 0, "",
                     "no users left (every user was filtered out or skipped" + (counts.empty() ? "" : ": " + counts) +
                         (kcore > 1 ? "; the " + std::to_string(kcore) + "-core filter applies, see --kcore" : "") +
                         ")");
  }
  ds.name = files.name;
  ds.format = std::string(format_name(files.format));
  ds.repeats = std::string(repeats_name(opts.repeats));
  detail::finish_dataset(ds, log, files.items.empty() ? std::string() : files.items.string());
  return ds;
}

}  // namespace lrgd::data
