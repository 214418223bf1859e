// Content hash, statistics and format names.
#include <algorithm>
#include <charconv>

#include "lrgd/data.h"
#include "lrgd/enum_names.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"

namespace lrgd::data {

namespace {

constexpr std::array<Named<Format>, 5> kFormats{{{Format::Auto, "auto"},
                                                 {Format::LcRec, "lcrec"},
                                                 {Format::RecBole, "recbole"},
                                                 {Format::AmazonRaw, "amazon-raw"},
                                                 {Format::Csv, "csv"}}};
constexpr std::array<Named<Repeats>, 3> kRepeats{
    {{Repeats::Keep, "keep"}, {Repeats::First, "first"}, {Repeats::Last, "last"}}};

}  // namespace

Format parse_format(std::string_view name) { return parse_named(kFormats, name, "--format", "format"); }

std::string_view format_name(Format format) { return name_of(kFormats, format); }

Repeats parse_repeats(std::string_view name) { return parse_named(kRepeats, name, "--repeats", "value"); }

std::string_view repeats_name(Repeats repeats) { return name_of(kRepeats, repeats); }

namespace {

// Appends a field with '\', TAB and LF escaped as \\, \t and \n.
void append_field(std::string& out, std::string_view s) {
  if (s.find_first_of("\\\t\n") == std::string_view::npos) {
    out.append(s);
    return;
  }
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

}  // namespace

std::string compute_content_hash(const Dataset& ds) {
  Sha256 sha;
  std::string buf;
  buf.reserve(1 << 20);
  auto flush = [&](bool force) {
    if (force || buf.size() >= (1 << 20) - 4096) {
      sha.update(buf);
      buf.clear();
    }
  };
  buf += "lrgd-dataset/1\nitems\t";
  append_number(buf, ds.items.size());
  buf.push_back('\n');
  for (const auto& item : ds.items) {
    append_field(buf, item.id);
    buf.push_back('\t');
    append_field(buf, item.title);
    buf.push_back('\t');
    append_field(buf, item.brand);
    buf.push_back('\t');
    append_field(buf, item.category);
    buf.push_back('\n');
    flush(false);
  }
  buf += "users\t";
  append_number(buf, ds.sequences.size());
  buf.push_back('\n');
  for (std::size_t u = 0; u < ds.sequences.size(); ++u) {
    append_field(buf, u < ds.user_ids.size() ? ds.user_ids[u] : std::string_view());
    buf.push_back('\t');
    const auto& seq = ds.sequences[u];
    append_number(buf, seq.size());
    buf.push_back('\t');
    for (std::size_t k = 0; k < seq.size(); ++k) {
      if (k > 0) buf.push_back(' ');
      append_number(buf, static_cast<std::uint64_t>(seq[k]));
    }
    buf.push_back('\n');
    flush(false);
  }
  flush(true);
  return sha.hex();
}

DatasetStats compute_stats(const Dataset& ds) {
  DatasetStats s;
  s.n_users = ds.n_users();
  s.n_items = ds.n_items();
  s.n_interactions = ds.n_interactions();
  if (s.n_users > 0 && s.n_items > 0) {
    s.sparsity =
        1.0 - static_cast<double>(s.n_interactions) / (static_cast<double>(s.n_users) * static_cast<double>(s.n_items));
  }
  if (s.n_users > 0) {
    std::vector<std::size_t> lens;
    lens.reserve(s.n_users);
    for (const auto& seq : ds.sequences) lens.push_back(seq.size());
    std::sort(lens.begin(), lens.end());
    s.seq_len_min = lens.front();
    s.seq_len_max = lens.back();
    s.seq_len_mean = static_cast<double>(s.n_interactions) / static_cast<double>(s.n_users);
    const std::size_t mid = lens.size() / 2;
    s.seq_len_median = lens.size() % 2 == 1
                           ? static_cast<double>(lens[mid])
                           : (static_cast<double>(lens[mid - 1]) + static_cast<double>(lens[mid])) / 2.0;
  }
  if (s.n_items > 0) {
    s.item_degree_mean = static_cast<double>(s.n_interactions) / static_cast<double>(s.n_items);
    for (const auto& item : ds.items) s.n_items_with_title += item.title.empty() ? 0 : 1;
    s.title_coverage = static_cast<double>(s.n_items_with_title) / static_cast<double>(s.n_items);
  }
  return s;
}

}  // namespace lrgd::data
