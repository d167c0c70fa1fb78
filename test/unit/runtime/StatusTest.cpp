//===- StatusTest.cpp - kiln_status_t -------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/safetensors.h"

namespace {

TEST(StatusTest, NullIsOk) {
  EXPECT_EQ(kiln_status_code(nullptr), KILN_OK);
  EXPECT_STREQ(kiln_status_message(nullptr), "");
  kiln_status_free(nullptr);
}

TEST(StatusTest, CodeNamesAreStable) {
  EXPECT_STREQ(kiln_status_code_name(KILN_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(kiln_status_code_name(KILN_OUT_OF_MEMORY), "OUT_OF_MEMORY");
}

TEST(StatusTest, NullArgumentsAreReportedNotCrashed) {
  kiln_status_t status = kiln_safetensors_open(nullptr, nullptr);
  EXPECT_EQ(kiln_status_code(status), KILN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_status_message(status)).find("kiln_safetensors_open"),
            std::string::npos);
  kiln_status_free(status);
}

kiln_status_t failsTwice(int *calls) {
  ++*calls;
  KILN_RETURN_IF_ERROR(kiln_safetensors_open(nullptr, nullptr));
  ++*calls; // not reached
  return nullptr;
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  int calls = 0;
  kiln_status_t status = failsTwice(&calls);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(kiln_status_code(status), KILN_INVALID_ARGUMENT);
  kiln_status_free(status);
}

} // namespace
