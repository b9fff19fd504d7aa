// JSON text for people and log pipelines: numbers with a fraction are plain
// decimals, never Boost 1.81's "1.285917E0".
#include <gtest/gtest.h>

#include <limits>

#include <boost/json.hpp>

#include "errand/json/text.hpp"
#include "errand/observe/logger.hpp"

namespace errand::json {
namespace {

TEST(JsonText, NumbersWithAFractionArePlainDecimals) {
  EXPECT_EQ(boost::json::serialize(boost::json::value(1.285917)), "1.285917E0");  // why this exists
  EXPECT_EQ(to_text(1.285917), "1.285917");
  EXPECT_EQ(to_text(0.25), "0.25");
  EXPECT_EQ(to_text(-3.5), "-3.5");
  EXPECT_EQ(to_text(1e-7), "0.0000001");
  EXPECT_EQ(to_text(1e-20), "0.00000000000000000001");
  EXPECT_EQ(to_text(-1e-20), "-0.00000000000000000001");
  EXPECT_EQ(to_text(1.2345678901234567e-5), "0.000012345678901234568");
  EXPECT_EQ(to_text(1e21), "1000000000000000000000.0");
  EXPECT_EQ(to_text(1e16), "10000000000000000.0");
  EXPECT_EQ(to_text(2.0), "2.0");  // still a double when read back
  EXPECT_TRUE(boost::json::parse(to_text(2.0)).is_double());
  for (const double d : {1e-20, 1.2345678901234567e-5, 3.141592653589793, 1e300, -7.25e-30}) {
    EXPECT_EQ(boost::json::parse(to_text(d)).as_double(), d) << to_text(d);  // round-trips
  }
  EXPECT_EQ(to_text(std::numeric_limits<double>::infinity()), "null");
  const auto v = boost::json::parse(R"({"a":[1,2.5,{"b":0.001}],"s":"x\n","n":null,"t":true})");
  EXPECT_EQ(to_text(v), R"({"a":[1,2.5,{"b":0.001}],"s":"x\n","n":null,"t":true})");
  EXPECT_EQ(boost::json::parse(to_text(v)), v);  // still JSON, the same value
  // Without a fraction anywhere: Boost's own output, byte for byte.
  const auto plain = boost::json::parse(R"({"k":[1,-2,"\u0001"]})");
  EXPECT_EQ(to_text(plain), boost::json::serialize(plain));
}

TEST(JsonText, LogLinesCarryPlainDecimals) {
  std::string line;
  auto log = observe::Logger::to_callback([&](std::string_view l) { line = l; });
  log.info("task succeeded", {{"duration_s", 1.286}});
  EXPECT_NE(line.find(R"("duration_s":1.286)"), std::string::npos) << line;
}

}  // namespace
}  // namespace errand::json
