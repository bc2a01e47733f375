#include "lib/http/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cairn::http {
namespace {

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-static-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    std::filesystem::create_directories(root_ + "/assets");
    Write("index.html", "<!doctype html><title>Cairn</title>");
    Write("assets/app-1a2b.js", "console.log(1)");
    Write("favicon.svg", "<svg/>");
    std::filesystem::create_symlink("/etc/passwd", root_ + "/passwd.txt");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(root_ + "/" + name) << text;
  }
  static Request Get(const std::string& path, const std::string& method = "GET") {
    Request r;
    r.method = method;
    r.target = *ParseTarget(path);
    return r;
  }
  static std::string HeaderOf(const Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::string root_;
};

TEST_F(StaticFilesTest, ServesFilesRoutesAndRefusesTheRest) {
  auto files = StaticFiles::Load(root_);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ((*files)->files(), 3u);  // the link is not read
  Response index = (*files)->Serve(Get("/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(HeaderOf(index, "Cache-Control"), "no-cache");
  EXPECT_NE(HeaderOf(index, "Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  EXPECT_EQ(HeaderOf(index, "X-Content-Type-Options"), "nosniff");
  Response js = (*files)->Serve(Get("/assets/app-1a2b.js"));
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(HeaderOf(js, "Cache-Control").find("immutable"), std::string::npos);
  // An application route (no extension) is index.html; a missing file 404.
  EXPECT_EQ((*files)->Serve(Get("/drills")).body, index.body);
  EXPECT_EQ((*files)->Serve(Get("/assets/gone.js")).status, 404);
  EXPECT_EQ((*files)->Serve(Get("/passwd.txt")).status, 404);
  EXPECT_EQ((*files)->Serve(Get("/", "POST")).status, 405);
  // A known ETag is 304 without a body; HEAD has no body.
  Request again = Get("/assets/app-1a2b.js");
  again.headers["if-none-match"] = HeaderOf(js, "ETag");
  Response not_modified = (*files)->Serve(again);
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_TRUE(not_modified.body.empty());
  EXPECT_TRUE((*files)->Serve(Get("/", "HEAD")).body.empty());
}

TEST_F(StaticFilesTest, ADirectoryWithoutIndexIsRefusedAndTheFallbackSaysHowToBuild) {
  std::filesystem::remove(root_ + "/index.html");
  auto files = StaticFiles::Load(root_);
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().message().find("npm run build"), std::string::npos);
  auto fallback = StaticFiles::NotBuilt("it is <not> built");
  Response r = fallback->Serve(Get("/overview"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("it is &lt;not> built"), std::string::npos);
}

TEST(ContentTypeTest, ByExtension) {
  EXPECT_EQ(ContentTypeOf("/a/b.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeOf("/a.b/c"), "application/octet-stream");
  EXPECT_EQ(ContentTypeOf("/x.woff2"), "font/woff2");
}

}  // namespace
}  // namespace cairn::http
