#include <gtest/gtest.h>

#include <boost/describe/class.hpp>

#include "errand/http/router.hpp"
#include "errand/http/testing.hpp"

namespace errand::http {
namespace bind_test {

struct Address {
  std::string city;
  std::optional<std::string> zip;
};
BOOST_DESCRIBE_STRUCT(Address, (), (city, zip))

struct Signup {
  std::string email;
  int age = 0;
  bool newsletter = false;
  double score = 0;
  std::vector<std::string> tags;
  std::optional<Address> address;
  std::uint8_t level = 0;
};
BOOST_DESCRIBE_STRUCT(Signup, (), (email, age, newsletter, score, tags, address, level))

struct Range {
  int lo = 0;
  int hi = 0;
  void validate() const {
    if (lo > hi) throw json::BindError("lo", "field 'lo' must not be above 'hi'");
  }
};
BOOST_DESCRIBE_STRUCT(Range, (), (lo, hi))

TEST(Bind, ValidateRunsAfterBindingAndIsA400) {
  Router router;
  router.post("/range", [](Context& c) {
    const auto r = c.bind<Range>();
    c.json(200, {{"width", r.hi - r.lo}});
  });
  auto ok = testing::perform(router, {"POST", "/range", {}, R"({"lo":1,"hi":4})"});
  EXPECT_EQ(ok.status, 200);
  auto bad = testing::perform(router, {"POST", "/range", {}, R"({"lo":5,"hi":4})"});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("code"), "invalid_field");
  EXPECT_EQ(bad.json().at("error").at("message"), "field 'lo' must not be above 'hi'");
}

class BindTest : public ::testing::Test {
 protected:
  BindTest() {
    router.post("/signup", [](Context& c) {
      auto in = c.bind<Signup>();
      c.json(200, {{"email", in.email},
                   {"age", in.age},
                   {"tags", in.tags.size()},
                   {"city", in.address ? in.address->city : "-"}});
    });
  }
  testing::Response post(std::string body, std::string content_type = "application/json") {
    testing::Request r{"POST", "/signup", {}, std::move(body)};
    if (!content_type.empty()) r.headers.emplace_back("Content-Type", content_type);
    return testing::perform(router, r);
  }
  static std::string message(const testing::Response& r) {
    return std::string(r.json().at("error").at("message").as_string());
  }
  Router router;
};

const char* const valid =
    R"({"email":"a@b.c","age":30,"newsletter":true,"score":1.5,"tags":["x","y"],)"
    R"("address":{"city":"Oslo"},"level":3,"unknown":"ignored"})";

TEST_F(BindTest, BindsADescribedStruct) {
  auto r = post(valid);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), boost::json::parse(R"({"email":"a@b.c","age":30,"tags":2,"city":"Oslo"})"));
}

TEST_F(BindTest, OptionalFieldsMayBeMissingOrNull) {
  auto r = post(
      R"({"email":"a","age":1,"newsletter":false,"score":0,"tags":[],"level":0,"address":null})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("city"), "-");
}

TEST_F(BindTest, MissingFieldIsA400NamingIt) {
  auto r = post(R"({"age":30,"newsletter":true,"score":1,"tags":[],"level":0})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json().at("error").at("code"), "invalid_field");
  EXPECT_EQ(message(r), "field 'email' is required");
}

TEST_F(BindTest, MistypedFieldIsA400NamingIt) {
  auto r = post(R"({"email":"a","age":"thirty","newsletter":true,"score":1,"tags":[],"level":0})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(message(r), "field 'age' must be an integer, got string");
}

TEST_F(BindTest, NestedAndArrayPathsAreNamed) {
  auto r = post(R"({"email":"a","age":1,"newsletter":true,"score":1,"tags":["x",2],"level":0})");
  EXPECT_EQ(message(r), "field 'tags[1]' must be a string, got integer");
  r = post(
      R"({"email":"a","age":1,"newsletter":true,"score":1,"tags":[],"level":0,"address":{"zip":"1"}})");
  EXPECT_EQ(message(r), "field 'address.city' is required");
}

TEST_F(BindTest, IntegersOutOfRangeAreRejected) {
  auto r = post(R"({"email":"a","age":1,"newsletter":true,"score":1,"tags":[],"level":256})");
  EXPECT_EQ(message(r), "field 'level' is out of range");
  r = post(R"({"email":"a","age":99999999999,"newsletter":true,"score":1,"tags":[],"level":1})");
  EXPECT_EQ(message(r), "field 'age' is out of range");
}

TEST_F(BindTest, InvalidJsonIsA400) {
  auto r = post(R"({"email": )");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json().at("error").at("code"), "invalid_json");
  EXPECT_EQ(post("").status, 400);
  EXPECT_EQ(post("[1,2]").status, 400);
}

TEST_F(BindTest, ContentTypeIsNotRequired) {
  EXPECT_EQ(post(valid, "application/json; charset=utf-8").status, 200);
  EXPECT_EQ(post(valid, "application/x-www-form-urlencoded").status, 200);  // curl -d
  EXPECT_EQ(post(valid, "").status, 200);
  EXPECT_EQ(post("email=a", "application/x-www-form-urlencoded").status, 400);
}

struct FreeForm {
  std::string kind;
  static constexpr json::Unknown unknown_fields = json::Unknown::ignore;
};
BOOST_DESCRIBE_STRUCT(FreeForm, (), (kind))

struct Outer {
  std::optional<Address> address;
  std::optional<FreeForm> extra;
  std::optional<std::map<std::string, Address>> by_name;
};
BOOST_DESCRIBE_STRUCT(Outer, (), (address, extra, by_name))

// Unknown fields are ignored by default (above: "unknown":"ignored"); strict
// binding names them, at any depth, unless a struct declares itself free-form.
TEST(StrictBind, UnknownFieldsAreIgnoredByDefaultAndRefusedWhenStrict) {
  const auto v = boost::json::parse(R"({"address":{"city":"Oslo","zipp":"0150"}})");
  EXPECT_EQ(json::from_json<Outer>(v).address->city, "Oslo");
  try {
    (void)json::from_json<Outer>(v, json::Unknown::reject);
    FAIL() << "strict binding accepted an unknown field";
  } catch (const json::BindError& e) {
    EXPECT_EQ(e.path(), "address.zipp");
    EXPECT_STREQ(e.what(), "unknown field 'address.zipp' (known: city, zip)");
  }
  // A free-form struct keeps what it does not know, even inside a strict bind.
  const auto loose = boost::json::parse(R"({"extra":{"kind":"k","more":1}})");
  EXPECT_EQ(json::from_json<Outer>(loose, json::Unknown::reject).extra->kind, "k");
  // Map values are structs too: their unknown fields are named under the key.
  const auto in_map = boost::json::parse(R"({"by_name":{"home":{"city":"x","floor":2}}})");
  EXPECT_THROW((void)json::from_json<Outer>(in_map, json::Unknown::reject), json::BindError);
}

TEST(StrictBind, ManyOrHugeUnknownKeysGiveABoundedMessage) {
  boost::json::object o;
  o["kind"] = "k";
  for (int i = 0; i < 1000; ++i) o["k" + std::to_string(i)] = i;
  o[std::string(10'000, 'z')] = 1;
  try {
    (void)json::from_json<Address>(o, json::Unknown::reject);
    FAIL();
  } catch (const json::BindError& e) {
    EXPECT_LT(std::string(e.what()).size(), 400U) << e.what();
    EXPECT_NE(std::string(e.what()).find("more"), std::string::npos) << e.what();
  }
}

TEST(TryBind, AnswersTheValueOrTheErrorWithoutThrowing) {
  Router router;
  router.post("/signup", [](Context& c) {
    const auto in = c.try_bind<Address>(json::Unknown::reject);
    if (!in) {
      c.json(422, {{"status", in.error->status()}, {"why", in.error->what()}});
      return;
    }
    c.json(200, {{"city", in->city}});
  });
  auto r = testing::perform(router,
                            {.method = "POST", .target = "/signup", .body = R"({"city":"Oslo"})"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("city"), "Oslo");
  r = testing::perform(router, {.method = "POST", .target = "/signup", .body = R"({"zip":"1"})"});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.json().at("status"), 400);
  EXPECT_EQ(r.json().at("why"), "field 'city' is required");
  r = testing::perform(router, {.method = "POST", .target = "/signup", .body = "{not json"});
  EXPECT_EQ(r.status, 422);
}

TEST(StrictBind, ContextBindIsStrictOnRequest) {
  Router router;
  router.post("/strict", [](Context& c) {
    c.json(200, {{"city", c.bind<Address>(json::Unknown::reject).city}});
  });
  router.post("/lenient", [](Context& c) { c.json(200, {{"city", c.bind<Address>().city}}); });
  const std::string body = R"({"city":"Oslo","cty":"typo"})";
  EXPECT_EQ(testing::perform(router, {"POST", "/lenient", {}, body}).status, 200);
  const auto r = testing::perform(router, {"POST", "/strict", {}, body});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json().at("error").at("code"), "invalid_field");
  EXPECT_EQ(r.json().at("error").at("message"), "unknown field 'cty' (known: city, zip)");
}

}  // namespace bind_test
}  // namespace errand::http
