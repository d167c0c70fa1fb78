//===- NNDialect.cpp - the nn dialect -------------------------------------===//
#include "kiln/Dialect/NN/IR/NNDialect.h"
#include "kiln/Dialect/NN/IR/NNOps.h"

using namespace kiln::nn;

#include "kiln/Dialect/NN/IR/NNOpsDialect.cpp.inc"

void NNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kiln/Dialect/NN/IR/NNOps.cpp.inc"
      >();
}
