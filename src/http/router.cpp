#include "errand/http/router.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/url/pct_string_view.hpp>

namespace errand::http {

struct RouteGroup::State {
  std::string prefix;  // full prefix, no trailing slash
  std::vector<Handler> middleware;
  std::shared_ptr<State> parent;
};

namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// Splits "/a/b/" into {"a","b",""}; "/" into {""}.
template <class Out>
void split_path(std::string_view path, Out& out) {
  path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

std::string join_pattern(std::string_view prefix, std::string_view pattern) {
  // "/v1" + "/" is "/v1"; "" + "/" is "/".
  if (pattern == "/") return prefix.empty() ? std::string("/") : std::string(prefix);
  return std::string(prefix) + std::string(pattern);
}

}  // namespace

struct Router::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> statics;
  std::unique_ptr<Node> param;
  std::string param_name;
  std::string param_pattern;  // first pattern that introduced the param, for messages
  std::unique_ptr<Node> rest;
  std::string rest_name;
  std::string rest_pattern;
  std::vector<std::pair<std::string, Route*>> methods;

  [[nodiscard]] const Route* find(std::string_view method) const {
    for (const auto& [m, r] : methods) {
      if (m == method) return r;
    }
    return nullptr;
  }
};

// ---------------------------------------------------------------- RouteGroup

void RouteGroup::use(Handler middleware) {
  if (router_->frozen_) throw std::logic_error("router is frozen: add middleware before start");
  if (!middleware) throw std::invalid_argument("use(): middleware is empty");
  state_->middleware.push_back(std::move(middleware));
}

RouteGroup RouteGroup::group(std::string_view prefix) {
  if (prefix.empty() || prefix.front() != '/' || prefix.find_first_of(":*") != prefix.npos) {
    throw std::invalid_argument(
        fmt::format("group prefix '{}' must start with '/' and contain no ':' or '*'", prefix));
  }
  std::string full = state_->prefix + std::string(prefix);
  while (full.size() > 1 && full.back() == '/') full.pop_back();
  if (full == "/") full.clear();
  return {router_, std::make_shared<State>(State{std::move(full), {}, state_})};
}

void RouteGroup::add(std::string_view method, std::string_view pattern, Handler handler,
                     RouteOptions options) {
  if (router_->frozen_) throw std::logic_error("router is frozen: add routes before start");
  if (method.empty()) throw std::invalid_argument("route method is empty");
  if (!handler)
    throw std::invalid_argument(fmt::format("{} {}: handler is empty", method, pattern));
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument(fmt::format("route '{}' must start with '/'", pattern));
  }
  router_->insert(std::string(method), join_pattern(state_->prefix, pattern), std::move(handler),
                  options, state_);
}

// ---------------------------------------------------------------- Router

Router::Router() : RouteGroup(this, std::make_shared<State>()), root_(std::make_unique<Node>()) {}

Router::~Router() = default;

void Router::insert(std::string method, std::string pattern, Handler handler, RouteOptions options,
                    std::shared_ptr<State> group) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument(fmt::format("route '{}' must start with '/'", pattern));
  }
  std::vector<std::string_view> segments;
  split_path(pattern, segments);
  Node* node = root_.get();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto seg = segments[i];
    if (!seg.empty() && seg.front() == ':') {
      const auto name = seg.substr(1);
      if (name.empty()) {
        throw std::invalid_argument(fmt::format("route '{}': parameter has no name", pattern));
      }
      if (node->param && node->param_name != name) {
        throw std::invalid_argument(
            fmt::format("route '{}' conflicts with '{}': parameter ':{}' vs ':{}' at one position",
                        pattern, node->param_pattern, name, node->param_name));
      }
      if (!node->param) {
        node->param = std::make_unique<Node>();
        node->param_name = name;
        node->param_pattern = pattern;
      }
      node = node->param.get();
    } else if (!seg.empty() && seg.front() == '*') {
      const auto name = seg.substr(1);
      if (name.empty()) {
        throw std::invalid_argument(fmt::format("route '{}': '*' needs a name", pattern));
      }
      if (i + 1 != segments.size()) {
        throw std::invalid_argument(
            fmt::format("route '{}': '*{}' must be the last segment", pattern, name));
      }
      if (node->rest && node->rest_name != name) {
        throw std::invalid_argument(
            fmt::format("route '{}' conflicts with '{}': '*{}' vs '*{}' at one position", pattern,
                        node->rest_pattern, name, node->rest_name));
      }
      if (!node->rest) {
        node->rest = std::make_unique<Node>();
        node->rest_name = name;
        node->rest_pattern = pattern;
      }
      node = node->rest.get();
    } else {
      // Static segments are stored decoded, so "/a%20b" and "/a b" are one route.
      auto decoded = boost::urls::make_pct_string_view(seg);
      if (!decoded) {
        throw std::invalid_argument(
            fmt::format("route '{}': invalid percent-encoding in '{}'", pattern, seg));
      }
      auto key = decoded->decode();
      auto it = node->statics.find(key);
      if (it == node->statics.end()) {
        it = node->statics.emplace(std::move(key), std::make_unique<Node>()).first;
      }
      node = it->second.get();
    }
  }
  if (const Route* existing = node->find(method)) {
    throw std::invalid_argument(fmt::format("route {} '{}' conflicts with already registered '{}'",
                                            method, pattern, existing->pattern));
  }
  routes_.push_back(std::make_unique<Route>(Route{method, pattern, options, {}}));
  pending_.push_back({routes_.back().get(), std::move(handler), std::move(group)});
  node->methods.emplace_back(std::move(method), routes_.back().get());
}

void Router::on_exception(ExceptionTranslator translate) {
  if (frozen_) throw std::logic_error("router is frozen: add exception translators before start");
  if (!translate) throw std::invalid_argument("router: an empty exception translator");
  translators_.push_back(std::move(translate));
}

std::optional<Error> Router::translate(const std::exception_ptr& error) const noexcept {
  for (const auto& t : translators_) {
    try {
      if (auto e = t(error)) return e;
    } catch (...) {  // NOLINT(bugprone-empty-catch): a broken translator leaves it to the next
    }
  }
  return std::nullopt;
}

void Router::freeze() {
  if (frozen_) return;
  auto chain_of = [](const std::shared_ptr<State>& group) {
    std::vector<const State*> lineage;  // root first
    for (const State* g = group.get(); g != nullptr; g = g->parent.get()) {
      lineage.insert(lineage.begin(), g);
    }
    std::vector<Handler> chain;
    for (const State* g : lineage) {
      chain.insert(chain.end(), g->middleware.begin(), g->middleware.end());
    }
    return chain;
  };
  for (auto& p : pending_) {
    p.route->chain = chain_of(p.group);
    p.route->chain.push_back(std::move(p.handler));
  }
  pending_.clear();
  fallback_chain_ = chain_of(state_);
  // The dispatcher has already written the 404/405/400 error; nothing left to do.
  fallback_chain_.emplace_back([](Context&) {});
  frozen_ = true;
}

namespace {

using Segments = std::vector<std::string_view>;

template <class NodeT>
const NodeT* match_rest(const NodeT* node, const Segments& segs, std::size_t i, Params& params) {
  if (!node->rest) return nullptr;
  std::string rest;
  for (std::size_t j = i; j < segs.size(); ++j) {
    if (j > i) rest.push_back('/');
    rest.append(segs[j]);
  }
  params.emplace_back(node->rest_name, std::move(rest));
  return node->rest.get();
}

template <class NodeT>
const NodeT* match_impl(const NodeT* node, const Segments& segs, std::size_t i, Params& params) {
  if (i == segs.size()) {
    if (!node->methods.empty()) return node;
    return match_rest(node, segs, i, params);
  }
  const auto seg = segs[i];
  if (auto it = node->statics.find(seg); it != node->statics.end()) {
    if (const auto* found = match_impl(it->second.get(), segs, i + 1, params)) return found;
  }
  if (node->param && !seg.empty()) {
    params.emplace_back(node->param_name, std::string(seg));
    if (const auto* found = match_impl(node->param.get(), segs, i + 1, params)) return found;
    params.pop_back();
  }
  return match_rest(node, segs, i, params);
}

}  // namespace

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  if (path.empty() || path.front() != '/') {
    result.kind = RouteMatch::Kind::bad_path;
    return result;
  }
  Segments segs;
  std::vector<std::string> decoded;  // owns decoded copies of segments with '%'
  if (path.find('%') != std::string_view::npos) {
    Segments raw;
    split_path(path, raw);
    decoded.reserve(raw.size());  // no reallocation: segs points into it
    for (auto seg : raw) {
      auto pct = boost::urls::make_pct_string_view(seg);
      if (!pct) {
        result.kind = RouteMatch::Kind::bad_path;
        return result;
      }
      decoded.push_back(pct->decode());
      segs.emplace_back(decoded.back());
    }
  } else {
    split_path(path, segs);
  }
  const Node* node = match_impl(root_.get(), segs, 0, result.params);
  if (node == nullptr) {
    result.params.clear();
    return result;
  }
  const Route* route = node->find(method);
  if (route == nullptr && method == "HEAD") route = node->find("GET");
  if (route != nullptr) {
    result.kind = RouteMatch::Kind::found;
    result.route = route;
    return result;
  }
  result.kind = RouteMatch::Kind::method_not_allowed;
  result.params.clear();
  for (const auto& [m, r] : node->methods) result.allowed.push_back(m);
  if (node->find("GET") != nullptr && node->find("HEAD") == nullptr) {
    result.allowed.emplace_back("HEAD");
  }
  std::sort(result.allowed.begin(), result.allowed.end());
  return result;
}

}  // namespace errand::http
