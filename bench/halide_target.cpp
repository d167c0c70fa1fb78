// Prints Halide's host target string and its f32 vector width as Halide
// reports them; `kilnc build --target=host` (the default) compiles for that
// less any feature the CPU lacks (docs/toolchain.md: Zen 4 and AVX-VNNI).
//   c++ -std=c++17 -I/usr/include/halide14 bench/halide_target.cpp -lHalide14 -o halide_target
#include <Halide.h>
#include <cstdio>
int main() {
  Halide::Target t = Halide::get_host_target();
  std::printf("halide_host_target: %s\nf32_lanes: %d\n", t.to_string().c_str(), t.natural_vector_size<float>());
}
