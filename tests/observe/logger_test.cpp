#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "errand/observe/logger.hpp"

namespace errand::observe {
namespace {

TEST(Logger, WritesOneJsonObjectPerLine) {
  std::vector<std::string> lines;
  auto log = Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); });
  log.info("hello \"world\"\nnext", {{"n", 1}});
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
  auto v = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(v.at("msg"), "hello \"world\"\nnext");
  EXPECT_EQ(v.at("level"), "info");
  EXPECT_EQ(v.at("n"), 1);
  EXPECT_TRUE(v.at("ts").as_string().ends_with("Z"));
}

TEST(Logger, BoundFieldsAppearOnEveryLineAndCallerFieldsWin) {
  std::vector<std::string> lines;
  auto base = Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); });
  auto log = base.with({{"trace_id", "t1"}, {"k", "bound"}}).with({{"task_id", "x"}});
  log.warn("a", {{"k", "mine"}});
  auto v = boost::json::parse(lines.at(0)).as_object();
  EXPECT_EQ(v.at("trace_id"), "t1");
  EXPECT_EQ(v.at("task_id"), "x");
  EXPECT_EQ(v.at("k"), "mine");
}

TEST(Logger, FiltersByLevel) {
  std::vector<std::string> lines;
  auto log = Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); }, Level::warn);
  log.debug("no");
  log.info("no");
  log.warn("yes");
  log.error("yes");
  EXPECT_EQ(lines.size(), 2U);
  EXPECT_FALSE(Logger::null().enabled(Level::error));
}

TEST(Logger, ParsesLevels) {
  EXPECT_EQ(parse_level("debug"), Level::debug);
  EXPECT_EQ(parse_level("off"), Level::off);
  EXPECT_THROW((void)parse_level("loud"), std::invalid_argument);
}

}  // namespace
}  // namespace errand::observe

namespace errand::observe {
namespace {

TEST(Logger, TextFormatIsForPeopleAndCarriesTheSameFields) {
  std::vector<std::string> lines;
  auto log = Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); }, Level::debug,
                                 Format::text)
                 .with({{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}});
  log.warn("task failed", {{"task_id", "01ABC"},
                           {"attempt", 2},
                           {"error", "connection refused\nby peer"},
                           {"queue", ""}});
  ASSERT_EQ(lines.size(), 1U);
  const auto& l = lines[0];
  EXPECT_NE(l.find("Z WARN  task failed task_id=01ABC attempt=2 "), std::string::npos) << l;
  EXPECT_NE(l.find(R"(error="connection refused\nby peer")"), std::string::npos) << l;
  EXPECT_NE(l.find(R"(queue="")"), std::string::npos) << l;
  EXPECT_NE(l.find("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"), std::string::npos) << l;
  EXPECT_EQ(l.find('\n'), std::string::npos) << "one line, whatever the fields hold";
  EXPECT_EQ(parse_format("text"), Format::text);
  EXPECT_THROW((void)parse_format("xml"), std::invalid_argument);
}

}  // namespace
}  // namespace errand::observe
