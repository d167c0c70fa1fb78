# A stand-in for Halide's CMake package in the cross build of the runtime.
# The model runtime takes only Halide's runtime header from Halide
# (HalideRuntime.h: C declarations, the same for every architecture), which
# the top level passes as KILN_HALIDE_RUNTIME_INCLUDE_DIR; Debian's Halide
# package is the compiler, for the build machine only.
if(NOT TARGET Halide::Halide)
  add_library(Halide::Halide INTERFACE IMPORTED)
  set_target_properties(Halide::Halide PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${KILN_HALIDE_RUNTIME_INCLUDE_DIR}")
endif()
set(Halide_FOUND TRUE)
