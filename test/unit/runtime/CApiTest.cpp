//===- CApiTest.cpp - The headers from C ----------------------------------===//
#include "TestUtil.h"

extern "C" int kiln_test_c_api_smoke(const char *path);

namespace {

class CApiTest : public kiln::test::TempDirTest {};

TEST_F(CApiTest, RoundTripFromC) {
  EXPECT_EQ(kiln_test_c_api_smoke(path("c.safetensors").c_str()), 0);
}

} // namespace
