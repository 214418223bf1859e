// The ICL prompt of one dataset user, as the recommender builds it (rec::build_inputs with
// the default demonstration: the user's validation window and its target), rendered with a
// prompt template; the part spans (T, D, P, Q, system) become character spans.
#include <algorithm>

#include "lrgd/data.h"
#include "lrgd/dual.h"
#include "lrgd/error.h"
#include "lrgd/item_model.h"
#include "lrgd/prompt.h"
#include "lrgd/protocol.h"
#include "lrgd/rec.h"

namespace lrgd::analysis {

namespace {

data::UserIndex find_user(const data::Dataset& ds, const std::string& id, const char* option) {
  const std::int32_t u = data::find_user(ds, id);
  if (u < 0)
    throw OptionError(option, "user '" + id + "' is not in the dataset (give its id in the data files, e.g. '" +
                                  (ds.user_ids.empty() ? std::string() : ds.user_ids.front()) +
                                  (ds.user_alt_ids.empty() ? std::string() : "' or '" + ds.user_alt_ids.front()) +
                                  "')");
  return static_cast<data::UserIndex>(u);
}

std::string part_label(prompt::SpanKind kind) {
  switch (kind) {
    case prompt::SpanKind::System:
      return "system";
    case prompt::SpanKind::Instruction:
      return "T";
    case prompt::SpanKind::Demonstration:
      return "D";
    case prompt::SpanKind::Perturbation:
      return "P";
    case prompt::SpanKind::Query:
      return "Q";
    default:
      return "";
  }
}

}  // namespace

UserPrompt build_user_prompt(const std::filesystem::path& data_dir, const std::string& user_id,
                             const UserPromptOptions& o) {
  data::LoadOptions lo;
  lo.kcore = o.kcore;
  return build_user_prompt(data::load_dataset(data_dir, lo), user_id, o);
}

UserPrompt build_user_prompt(const data::Dataset& ds, const std::string& user_id, const UserPromptOptions& o) {
  const data::UserIndex user = find_user(ds, user_id, "--user");
  const auto& seq = ds.sequences[static_cast<std::size_t>(user)];
  const auto loo = protocol::split_leave_one_out(seq, o.max_history);

  UserPrompt up;
  up.user_id = ds.user_ids[static_cast<std::size_t>(user)];
  data::UserIndex demo_user = user;
  if (o.demo_user == "random") {
    if (ds.n_users() < 2) throw OptionError("--bad-demo-user", "the dataset has a single user");
    Rng rng = Rng::derive(o.seed, "dual/bad-demo", static_cast<std::uint64_t>(user));
    do demo_user = static_cast<data::UserIndex>(rng.uniform(ds.n_users()));
    while (demo_user == user);
  } else if (!o.demo_user.empty()) {
    demo_user = find_user(ds, o.demo_user, "--bad-demo-user");
  }
  up.demo_user_id = ds.user_ids[static_cast<std::size_t>(demo_user)];
  const auto demo_loo = demo_user == user ? loo
                                          : protocol::split_leave_one_out(
                                                ds.sequences[static_cast<std::size_t>(demo_user)], o.max_history);

  protocol::CandidateSampler sampler(ds, protocol::NegativeSampling::UniformUnseen);
  Rng rt = protocol::candidate_rng(o.seed, protocol::Phase::Test, user, 0);
  const auto candidates = sampler.sample(user, loo.test_target, o.n_candidates, rt);

  rec::Query query;
  query.user = user;
  query.history = loo.test_history;
  query.candidates = candidates;
  query.target = loo.test_target;
  query.demo_history = demo_loo.valid_history;
  query.demo_target = demo_loo.valid_target;
  if (o.demo) {
    const auto ids = data::index_item_ids(ds);
    const auto item = [&](const std::string& id) {
      const auto i = ids.find(id);
      if (i < 0) throw OptionError("--demos-from", "item '" + id + "' is not in dataset " + ds.name);
      return static_cast<data::ItemIndex>(i);
    };
    query.demo_history.clear();
    for (const auto& id : o.demo->history) query.demo_history.push_back(item(id));
    query.demo_target = item(o.demo->target);
    query.demo_explanation = o.demo->explanation;
    up.demo_user_id = up.user_id + " (" + o.demo->label + ")";
  }
  const auto in = rec::build_inputs(ds, query, /*with_demo=*/true, o.list_length, /*regularisation=*/"");
  const auto rendered = prompt::Template::builtin(o.template_name).render(in);

  for (const auto& m : rendered.messages) {
    up.chat.roles.push_back(m.role);
    up.chat.contents.push_back(m.content);
  }
  for (const auto& s : rendered.spans) {
    const std::string label = part_label(s.kind);
    if (!label.empty()) up.chat.spans.push_back({label, s.message, s.begin, s.end});
  }
  up.item_prompt.tokens = rec::item_prompt_tokens(query, /*with_demo=*/true);
  const auto n_query = static_cast<int>(rec::item_prompt_tokens(query, /*with_demo=*/false).size());
  const auto n_all = static_cast<int>(up.item_prompt.tokens.size());
  if (n_all > n_query) up.item_prompt.spans.push_back({"D", 0, n_all - n_query});
  up.item_prompt.spans.push_back({"Q", n_all - n_query, n_all});
  up.item_target_token = item_model::item_token(loo.test_target);
  up.target_title = rec::item_text(ds, loo.test_target);
  up.target_number =
      static_cast<int>(std::find(candidates.begin(), candidates.end(), loo.test_target) - candidates.begin()) + 1;
  return up;
}

}  // namespace lrgd::analysis
