// The TOML configuration file (`errand serve --config FILE`), parsed by the
// real command line (CLI11) and checked by app::validate() as serve() would
// before it starts anything. A file is accepted or refused with a usage
// error (2); anything thrown past that is a crash here.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "errand/app/config.hpp"
#include "fuzz_check.hpp"

namespace {

const std::string& config_path() {
  static const std::string path = "/tmp/errand-config-fuzz-" + std::to_string(getpid()) + ".toml";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(config_path(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data),  // NOLINT(*-reinterpret-cast)
              static_cast<std::streamsize>(size));
  }
  std::string arg0 = "errand", arg1 = "serve", arg2 = "--config", arg3 = config_path();
  std::array<char*, 4> argv{arg0.data(), arg1.data(), arg2.data(), arg3.data()};
  const int code = errand::cli::run(static_cast<int>(argv.size()), argv.data(),
                                    [](const errand::app::Config& config) {
                                      try {
                                        errand::app::validate(config);
                                        return 0;
                                      } catch (const std::invalid_argument&) {
                                        return 2;
                                      }
                                    });
  errand::fuzz::check(code == 0 || code == 2, "a config is accepted or refused as usage");
  return 0;
}
