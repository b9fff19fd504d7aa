// The memory store runs the Store contract.
#include "errand/store/memory_store.hpp"
#include "store/store_contract.hpp"

namespace errand::store {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Memory, StoreContract,
    ::testing::Values(contract::Backend{
        "memory", [](const std::filesystem::path&) { return std::make_unique<MemoryStore>(); }}),
    contract::backend_name);

}  // namespace
}  // namespace errand::store
