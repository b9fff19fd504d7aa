// The Redis store runs the Store contract against a real redis-server, and
// keeps what only it promises: several stores (nodes) on one Redis, errors
// and recovery when Redis goes away, key prefixes that keep deployments apart.
#include <gtest/gtest.h>

#include "errand/store/redis_store.hpp"
#include "store/store_contract.hpp"
#include "support/redis_server.hpp"

namespace errand::store {
namespace {

// One redis-server for the whole contract suite; each store gets a prefix of
// its own, so tests never see each other's keys.
test::RedisServer& shared_redis() {
  static test::RedisServer server;
  return server;
}

RedisOptions options_for(const test::RedisServer& server, std::string prefix) {
  RedisOptions o;
  o.endpoint = parse_redis_url(server.url());
  o.key_prefix = std::move(prefix);
  return o;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreContract,
                         ::testing::Values(contract::Backend{
                             "redis",
                             [](const std::filesystem::path& d) {
                               return std::make_unique<RedisStore>(
                                   options_for(shared_redis(), d.filename().string()));
                             }}),
                         contract::backend_name);

}  // namespace
}  // namespace errand::store
