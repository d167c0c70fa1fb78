//===- ArrayTest.cpp - kiln_array_t and dtypes ----------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/array.h"

using namespace kiln::test;

namespace {

TEST(ArrayTest, CreateIsZeroFilledAndAligned) {
  int64_t shape[] = {3, 5};
  kiln_array_t *array = nullptr;
  KILN_ASSERT_OK(kiln_array_create(KILN_DTYPE_F32, 2, shape, &array));
  EXPECT_EQ(kiln_array_count(array), 15u);
  EXPECT_EQ(kiln_array_byte_size(array), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(kiln_array_data(array)) % 64, 0u);
  auto *values = static_cast<const float *>(kiln_array_const_data(array));
  EXPECT_TRUE(std::all_of(values, values + 15, [](float v) { return v == 0; }));
  kiln_array_free(array);
}

TEST(ArrayTest, CreateRejectsOverflowingShape) {
  int64_t shape[] = {int64_t{1} << 40, int64_t{1} << 40};
  kiln_array_t *array = nullptr;
  EXPECT_EQ(take(kiln_array_create(KILN_DTYPE_U8, 2, shape, &array)).code,
            KILN_INVALID_ARGUMENT);
  EXPECT_EQ(array, nullptr);
}

TEST(ArrayTest, HugeAllocationIsOutOfMemoryNotACrash) {
  int64_t shape[] = {int64_t{1} << 60};
  kiln_array_t *array = nullptr;
  EXPECT_EQ(take(kiln_array_create(KILN_DTYPE_U8, 1, shape, &array)).code,
            KILN_OUT_OF_MEMORY);
  EXPECT_EQ(array, nullptr);
}

TEST(ArrayTest, DtypeNamesAndSizes) {
  EXPECT_STREQ(kiln_dtype_name(KILN_DTYPE_BF16), "BF16");
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_BF16), 2u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_I64), 8u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_BOOL), 1u);
  EXPECT_EQ(kiln_dtype_size(static_cast<kiln_dtype_t>(99)), 0u);
}

} // namespace
