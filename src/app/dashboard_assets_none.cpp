// The library without the dashboard (-DERRAND_DASHBOARD=OFF): no assets.
#include "app/dashboard_assets.hpp"

namespace errand::app::detail {

std::span<const DashboardAsset> dashboard_assets() {
  return {};
}

}  // namespace errand::app::detail
